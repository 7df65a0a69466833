"""What the two actors of the ``learning`` stream share: a dataset's examples as the log has them, written out as a
training file; and, in ``LearningStreamActor`` (the Trainer, ``actors.learning.actor``, and the FineTuner,
``actors.tuning.actor``): the stream's state, loaded with what the other appended; an append that is decided again
on fresh state and refused if the command turns out to be seen or not allowed; and a command handed to its
handler by name, bad arguments answered with the command's usage."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from actors.commands import InvokeCommand
from actors.learning.examples import Example
from actors.ports import TrainingFiles
from actors.tuning.records import dpo_records, sft_records
from actors.learning import decider as training
from actors.learning import folding
from actors.learning.command_line import CommandLineError
from actors.learning.decider import Learning
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from events import EventStore
from events.catalog.learning import LEARNING_STREAM, ExamplesAdded
from events.model import Event
from events.scopes import folder_of


def examples_of(store: EventStore, dataset_id: str) -> tuple[list[Example], tuple[int, int]]:
    """A dataset's examples as the log has them (not the read model, which may lag), and the first and
    last log positions they came from."""
    examples: list[Example] = []
    first = last = 0
    for recorded in store.read_all(types=[ExamplesAdded.type_name]):  # global positions, for manifests
        e = recorded.event
        if isinstance(e, ExamplesAdded) and e.dataset_id == dataset_id:
            examples += [Example.from_record(x) for x in e.examples]
            first, last = first or recorded.position or 0, recorded.position or 0
    return examples, (first, last)


def write_export(files: TrainingFiles, target: training.Dataset, examples: list[Example], form: str,
                 system_prompt: str, suffix: str = "") -> training.Written:
    """A dataset's examples as a training file (``sft``: chats; ``dpo``: preference pairs) under ``exports/``."""
    records = sft_records(examples, system_prompt) if form == "sft" else dpo_records(examples, system_prompt)
    return files.write_jsonl(f"exports/{folder_of(target.scope)}/{target.name}-{form}{suffix}.jsonl", records)


class LearningStreamActor(SupervisedActor):
    usage: Mapping[str, str] = {}  # command name -> its usage, said when its arguments cannot be read

    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish):
        super().__init__(supervisor)
        self.store = store
        # shared: the Trainer and the FineTuner both append to the stream
        self.streams = DecidedStreams(store, publish, Learning(), training.evolve, lambda _: LEARNING_STREAM,
                                      fold=folding.fold, shared=True)

    @property
    def state(self) -> Learning:
        return self.streams.load(LEARNING_STREAM)

    def handlers(self) -> Mapping[str, Callable[[InvokeCommand], None]]:
        raise NotImplementedError

    def _execute(self, c: InvokeCommand | None, decide: Callable[[Learning], list[Event]]) -> None:
        """Append what ``decide`` says, unless (decided again on fresh state) the command is refused."""
        def guarded(state: Learning) -> list[Event]:
            if c is not None and (first := training.refusal(state, c)) is not None:
                return first
            return decide(state)

        self.streams.execute(LEARNING_STREAM, guarded)

    def _command(self, c: InvokeCommand) -> None:
        if training.refusal(self.state, c) is not None:
            self._execute(c, lambda s: [])
            return
        name = c.name.strip().lower()
        try:
            self.handlers()[name](c)
        except CommandLineError as e:
            text = f"{e}. Usage: {self.usage[name]}"
            self._execute(c, lambda s: [training.rejected(c, "bad_arguments", text)])

    def _abandoned(self, c: InvokeCommand) -> None:
        """The command failed again and again: its author is told, and that is recorded."""
        self._execute(c, lambda s: [training.rejected(c, "internal_error", "Sorry, something went wrong on my side "
                                                                           "with that command. It has been logged.")])
