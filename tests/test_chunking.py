from adapters.discord.chunking import split_message


def test_short_text_is_one_message():
    assert split_message("hello") == ["hello"]


def test_long_text_splits_at_lines_and_each_part_fits():
    text = "\n".join(f"line {i} " + "x" * 50 for i in range(100))
    parts = split_message(text)
    assert len(parts) > 1 and all(len(p) <= 2000 for p in parts)
    assert "\n".join(parts).split("\n") == text.split("\n")  # nothing lost, nothing cut mid-line


def test_one_huge_line_splits_at_sentences():
    sentence = "This is a sentence of moderate length. "
    text = sentence * 150
    parts = split_message(text)
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.endswith(".") for p in parts[:-1])
    assert " ".join(parts).split() == text.split()


def test_a_code_block_is_not_split_when_it_can_move_whole():
    prose = "word " * 380  # 1,900 characters: the code block cannot fit after it
    code = "```python\n" + "\n".join(f"print({i})" for i in range(20)) + "\n```"
    parts = split_message(prose + "\n" + code + "\nafter")
    assert len(parts) == 2
    assert parts[1].startswith("```python") and parts[1].count("```") == 2


def test_a_code_block_longer_than_a_message_is_closed_and_reopened():
    code = "```js\n" + "\n".join(f"console.log({i});" for i in range(400)) + "\n```"
    parts = split_message(code)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 2000
        assert part.count("```") == 2  # each message is a complete block
        assert part.startswith("```js")
    lines = [l for p in parts for l in p.split("\n") if not l.startswith("```")]
    assert lines == [f"console.log({i});" for i in range(400)]


def test_empty_text_has_no_messages():
    assert split_message("") == []


# -- what fuzzing found (issue 16), and the properties that hold for any answer ------------------------------
import re  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from adapters.discord.chunking import DISCORD_LIMIT  # noqa: E402

BARE_FENCE = re.compile(r"\s*```[^\s`]{0,20}\s*")


def text_of(text: str) -> str:
    """The characters a reader sees, without the fences a split may add (and the bare ones it may drop)."""
    return "".join("".join(line.split()) for line in text.split("\n") if not BARE_FENCE.fullmatch(line))


def fences(part: str) -> int:
    return sum(1 for line in part.split("\n") if line.lstrip().startswith("```"))


def test_the_cases_fuzzing_found_fit_and_keep_their_text():
    for text in ("```\n```\n``` " + " ".join(["a" * 100] * 20), "```python\n" + "x" * 1987 + "\n```"):
        parts = split_message(text)
        assert all(len(p) <= DISCORD_LIMIT for p in parts), [len(p) for p in parts]
        assert all(text_of(p) for p in parts)  # no empty code-block message
        assert text_of("\n".join(parts)) == text_of(text)
    fenced = "intro " * 300 + "\n```py  # words after the fence\nprint(1)\n```\n" + "outro " * 300
    assert "```py  # words after the fence" in "\n".join(split_message(fenced))  # unchanged
    assert split_message("\n") == [] and split_message(" \n\t") == []


ANSWER = st.lists(st.one_of(st.sampled_from(["```", "```python", "``` words after", "", " ", ".", "a" * 120]),
                            st.text(st.sampled_from("ab .\n`"), max_size=300)), max_size=40).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(ANSWER)
def test_any_answer_splits_into_parts_that_fit_render_alone_and_lose_nothing(text):
    parts = split_message(text, limit=400)
    assert all(len(p) <= 400 and p.strip() for p in parts)
    assert text_of("\n".join(parts)) == text_of(text)
    unbalanced = [i for i, p in enumerate(parts) if fences(p) % 2]
    assert unbalanced in ([], [len(parts) - 1])  # only where the answer itself left a block open
