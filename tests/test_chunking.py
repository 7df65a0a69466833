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
