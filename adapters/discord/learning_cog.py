"""The learning commands on Discord (``train``, ``dataset``, ``getfile``, ``instruction``, ``test``,
``finetune``, ``model``), prefix and slash. They only become ``InvokeCommand``s for the Trainer (see
``CommandsCog._invoke``); the Trainer decides, and checks that the caller is an admin.

A prefix command's arguments are its message text after the name (so a prompt may hold quotes and
``=>``); a slash command's are its options, joined the same way.
"""
from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.cogs import CommandsCog


class LearningCog(commands.Cog, name="Learning"):
    def __init__(self, commands_cog: CommandsCog):
        self.commands_cog = commands_cog

    async def _run(self, ctx: commands.Context, name: str, *slash_args: str,
                   file: discord.Attachment | None = None) -> None:
        args = " ".join(a for a in slash_args if a).strip() if ctx.interaction is not None else None
        if name == "train" and file is None and ctx.interaction is None and ctx.message.attachments:
            file = ctx.message.attachments[0]
        await self.commands_cog._invoke(ctx, name, args, file)

    @commands.hybrid_command(name="train", description="Teach Parley an example, or a file of them (admins)")
    @app_commands.describe(example="PROMPT => ANSWER, or -PROMPT => ANSWER for an answer to avoid",
                           file="many examples: .jsonl (chat or preference), .csv or .txt (Q:/A:)")
    async def train(self, ctx: commands.Context, file: discord.Attachment | None = None, *, example: str = "") -> None:
        await self._run(ctx, "train", example, file=file)

    @commands.hybrid_command(name="dataset", description="Datasets of examples: create, select, use, list, show, "
                                                         "delete, export, archive (admins)")
    @app_commands.describe(action="create | select | use | list | show | delete | export | archive",
                           name="the dataset", options="--format sft|dpo (export)")
    async def dataset(self, ctx: commands.Context, action: str = "list", name: str = "", *, options: str = "") -> None:
        await self._run(ctx, "dataset", action, name, options)

    @commands.hybrid_command(name="getfile", description="Send a file from exports/ or archives/ (admins)")
    @app_commands.describe(name="a file name in exports/ or archives/")
    async def getfile(self, ctx: commands.Context, *, name: str = "") -> None:
        await self._run(ctx, "getfile", name)

    @commands.hybrid_command(name="instruction", description="How to teach Parley (admins)")
    async def instruction(self, ctx: commands.Context) -> None:
        await self._run(ctx, "instruction")

    @commands.hybrid_command(name="test", description="Score the model on held-out examples (admins)")
    @app_commands.describe(dataset="the dataset (default: the one teaching here)", options="--holdout 20%")
    async def test(self, ctx: commands.Context, dataset: str = "", *, options: str = "") -> None:
        await self._run(ctx, "test", dataset, options)

    @commands.hybrid_command(name="finetune", description="Fine-tuning jobs: start, status, list, cancel (admins)")
    @app_commands.describe(action="start | status | list | cancel", target="base model (start) or job id",
                           options="--method sft|dpo, --channel, --dataset NAME")
    async def finetune(self, ctx: commands.Context, action: str = "list", target: str = "", *,
                       options: str = "") -> None:
        await self._run(ctx, "finetune", action, target, options)

    @commands.hybrid_command(name="model", description="The chat model: use NAME, or list (admins)")
    @app_commands.describe(action="use | list", name="the model", options="--channel: only in this channel")
    async def model(self, ctx: commands.Context, action: str = "list", name: str = "", *, options: str = "") -> None:
        await self._run(ctx, "model", action, name, options)
