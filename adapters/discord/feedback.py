"""Corrections and feedback on Discord: 👍/👎 buttons under every answer (persistent: the buttons are
matched by their custom id, so they keep working after a restart), a form for the better answer
(after 👎, or the message command "Correct this answer"), ``correct`` as a reply or with a message link
(prefix and slash) and ``feedback``. They only become commands for the CorrectionLog, which decides.

Buttons, not reactions: a reaction the bot adds to its own answer looks like a vote.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from actors.access import QUIET, AccessPolicy
from actors.commands import InvokeCommand, VoteAnswer
from adapters.discord.cogs import SOURCE, CommandsCog, command_conversation, person_of, scope_of
from adapters.discord.transport import DiscordTransport

log = logging.getLogger("parley.discord")

MESSAGE_LINK = re.compile(r"(?:https?://)?(?:\w+\.)?discord(?:app)?\.com/channels/[\w@]+/\d+/(\d+)")
VOTE = {"up": "👍", "down": "👎"}


def message_id_of(text: str) -> str:
    """A message link's id, or a bare id; "" when it is neither."""
    text = text.strip()
    if match := MESSAGE_LINK.search(text):
        return match.group(1)
    return text if text.isdigit() else ""


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"parley:vote:(?P<rating>up|down)"):
    def __init__(self, rating: str, on_vote: Callable | None = None):
        super().__init__(discord.ui.Button(style=discord.ButtonStyle.secondary, emoji=VOTE[rating],
                                           custom_id=f"parley:vote:{rating}"))
        self.rating = rating

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /):  # noqa: ANN206
        return cls(match["rating"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Feedback")  # type: ignore[union-attr]
        if cog is not None:
            await cog.vote(interaction, self.rating)


class ForgetButton(discord.ui.DynamicItem[discord.ui.Button], template=r"parley:forget:(?P<person>\d+)"):
    """The confirmation of ``forget-me``; only the person who asked may press it."""

    def __init__(self, person: str):
        super().__init__(discord.ui.Button(style=discord.ButtonStyle.danger, label="Forget me",
                                           custom_id=f"parley:forget:{person}"))
        self.person = person

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /):  # noqa: ANN206
        return cls(match["person"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Feedback")  # type: ignore[union-attr]
        if cog is not None:
            await cog.confirm_forget(interaction, self.person)


FORGET_PROMPT = ("This makes everything you said to me unreadable for good, in my log too, and deletes your audio "
                 "files and the exported examples with your words. It cannot be undone. Press the button to confirm.")


class ReviewButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"parley:review:(?P<verb>approve|reject):(?P<number>\d{1,20})"):
    """Approve or reject a member's correction, under ``corrections review``: pressing it runs
    ``corrections approve|reject N`` as the person who pressed (so only that server's admins can)."""

    def __init__(self, verb: str, number: str):
        style = discord.ButtonStyle.success if verb == "approve" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(style=style, label=f"{verb.title()} {number}",
                                           custom_id=f"parley:review:{verb}:{number}"))
        self.verb, self.number = verb, number

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /):  # noqa: ANN206
        return cls(match["verb"], match["number"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Feedback")  # type: ignore[union-attr]
        if cog is not None:
            await cog.review(interaction, self.verb, self.number)


def choices_view(choices: tuple[str, ...]) -> discord.ui.View | None:
    """Buttons for the commands a reply offers (only the ones Parley knows how to press: reviews)."""
    view = discord.ui.View(timeout=None)
    for choice in choices[:25]:
        match = re.fullmatch(r"corrections (approve|reject) (\d{1,20})", choice)
        if match:
            view.add_item(ReviewButton(match[1], match[2]))
    return view if view.children else None


def feedback_view() -> discord.ui.View:
    """The buttons under an answer."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up"))
    view.add_item(VoteButton("down"))
    return view


class CorrectionForm(discord.ui.Modal, title="Correct this answer"):
    better = discord.ui.TextInput(label="The better answer", style=discord.TextStyle.paragraph, max_length=4000)

    def __init__(self, cog: FeedbackCog, target_message_id: str, via: str):
        super().__init__(custom_id=f"parley:correct:{target_message_id}")
        self.cog, self.target_message_id, self.via = cog, target_message_id, via

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.submit_correction(interaction, self.target_message_id, self.better.value, self.via)


class FeedbackCog(commands.Cog, name="Feedback"):
    def __init__(self, bot: commands.Bot, dispatch: Callable[[object], None], transport: DiscordTransport,
                 commands_cog: CommandsCog, access: AccessPolicy = AccessPolicy()):
        self.bot = bot
        self.dispatch = dispatch
        self.transport = transport
        self.commands_cog = commands_cog
        self.access = access
        self.menu = app_commands.ContextMenu(name="Correct this answer", callback=self.correct_menu)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(VoteButton, ForgetButton, ReviewButton)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(VoteButton, ForgetButton, ReviewButton)
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # -- commands ------------------------------------------------------------------------------------
    @commands.hybrid_command(name="correct", description="Give a better answer to one of Parley's answers")
    @app_commands.describe(message="a link to Parley's answer (or its id)", answer="the better answer")
    async def correct(self, ctx: commands.Context, message: str = "", *, answer: str = "") -> None:
        if ctx.interaction is not None:
            await self.commands_cog._invoke(ctx, "correct", answer, target_message_id=message_id_of(message),
                                            via="slash")
        else:
            await self.commands_cog._invoke(ctx, "correct", None, target_message_id=_replied_to(ctx), via="reply")

    @commands.hybrid_command(name="feedback", description="Tell Parley's operators what you think")
    @app_commands.describe(text="your feedback")
    async def feedback(self, ctx: commands.Context, *, text: str = "") -> None:
        if ctx.interaction is not None:
            await self.commands_cog._invoke(ctx, "feedback", text, via="slash")
        else:
            await self.commands_cog._invoke(ctx, "feedback", None, target_message_id=_replied_to(ctx), via="reply")

    @commands.hybrid_command(name="corrections", description="Members' corrections: review, approve N, reject N "
                                                             "(this server's admins)")
    @app_commands.describe(action="review | approve | reject", number="the correction's number in the review")
    async def corrections(self, ctx: commands.Context, action: str = "review", number: str = "") -> None:
        await self.commands_cog._invoke(ctx, "corrections", f"{action} {number}".strip())

    @commands.hybrid_command(name="forget-me", description="Make everything you said to Parley unreadable, for good")
    async def forget_me(self, ctx: commands.Context) -> None:
        if ctx.author.bot:
            return
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetButton(str(ctx.author.id)))
        if ctx.interaction is not None:
            await ctx.send(FORGET_PROMPT, view=view, ephemeral=True)
        else:
            await ctx.reply(FORGET_PROMPT, view=view, mention_author=False)

    async def confirm_forget(self, interaction: discord.Interaction, person: str) -> None:
        if str(interaction.user.id) != person:
            await interaction.response.send_message("Only the person who asked to be forgotten can confirm it.",
                                                    ephemeral=True)
            return
        # Heard from anyone, blocked or not: being forgotten is everyone's right.
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.transport.remember_interaction(str(interaction.id), interaction)
        self.dispatch(InvokeCommand(**self._who(interaction), name="forget-me", via="button"))

    async def review(self, interaction: discord.Interaction, verb: str, number: str) -> None:
        if await self._refused_quietly(interaction):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.transport.remember_interaction(str(interaction.id), interaction)
        self.dispatch(InvokeCommand(**self._who(interaction), **self._powers(interaction), name="corrections",
                                    args=f"{verb} {number}", via="button", refusal=self._verdict(interaction)))

    async def correct_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if await self._refused_quietly(interaction):
            return
        await interaction.response.send_modal(CorrectionForm(self, str(message.id), "menu"))

    # -- buttons and the form --------------------------------------------------------------------------
    async def vote(self, interaction: discord.Interaction, rating: str) -> None:
        if await self._refused_quietly(interaction) or interaction.message is None:
            return
        target = str(interaction.message.id)
        silent = rating == "down"
        if not silent:
            self.transport.remember_interaction(str(interaction.id), interaction)  # its thanks go to this click
        # The vote is handed over before the click is acknowledged: an acknowledgement that fails (the network,
        # Discord's 3 s passed) loses only the acknowledgement, never the vote.
        self.dispatch(VoteAnswer(**self._who(interaction), target_message_id=target, rating=rating, silent=silent,
                                 refusal=self._verdict(interaction)))
        try:
            if silent:  # the answer to a 👎 is the form for a better answer
                await interaction.response.send_modal(CorrectionForm(self, target, "button"))
            else:
                await interaction.response.defer(ephemeral=True, thinking=True)
        except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.warning("could not acknowledge the %s vote %s (it is recorded): %s", rating, interaction.id, e)

    async def submit_correction(self, interaction: discord.Interaction, target: str, text: str, via: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.transport.remember_interaction(str(interaction.id), interaction)
        self.dispatch(InvokeCommand(**self._who(interaction), **self._powers(interaction), name="correct", args=text,
                                    target_message_id=target,
                                    via=via, refusal=self._verdict(interaction)))

    def _verdict(self, interaction: discord.Interaction) -> str:
        return self.access.verdict(person_of(interaction.user, interaction.channel))

    async def _refused_quietly(self, interaction: discord.Interaction) -> bool:
        if interaction.user.bot or self._verdict(interaction) != QUIET:
            return interaction.user.bot
        await interaction.response.send_message("I can't help you here.", ephemeral=True)
        return True

    @staticmethod
    def _who(interaction: discord.Interaction) -> dict[str, str]:
        channel = interaction.channel  # (``adapters.discord.interactions`` fills it when Discord sent only its id)
        return dict(source=SOURCE, conversation_id=command_conversation(channel), channel_id=str(channel.id),  # type: ignore[union-attr]
                    message_id=str(interaction.id), author_id=str(interaction.user.id),
                    author_name=interaction.user.display_name, scope=scope_of(channel, interaction.user))

    def _powers(self, interaction: discord.Interaction) -> dict[str, bool]:
        person = person_of(interaction.user, interaction.channel)
        return dict(is_admin=self.access.is_admin(person), is_operator=self.access.is_operator(person))


def _replied_to(ctx: commands.Context) -> str:
    reference = ctx.message.reference
    return str(reference.message_id) if reference is not None and reference.message_id else ""
