"""The chat wire format of instruction editing: bodies, conversation, streamed replies."""

from __future__ import annotations

import json

import pytest

from llama_nvim.chat import (
    Conversation,
    EditContext,
    SseParser,
    delta_content,
    stream_body,
    system_message,
    user_message,
    warm_up_body,
)
from llama_nvim.chat_client import chat_root
from llama_nvim.protocol import ExtraChunk, StreamError

CONTEXT = EditContext(
    prefix=("def f():",),
    selection=("    return 1", "    # end"),
    suffix=("print(f())",),
    extra=(ExtraChunk("lib/util.py", "def util():\n    pass\n"),),
)


def sse(*deltas: str) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"content": d}}]} for d in deltas]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


def test_system_message_puts_the_stable_parts_first() -> None:
    content = system_message(CONTEXT)["content"]
    order = [content.index(part) for part in ("INSTRUCTION", "--- CONTEXT", "lib/util.py",
             "--- PREFIX", "def f():", "--- SELECTION", "    return 1\n    # end\n",
             "--- SUFFIX", "print(f())")]  # fmt: skip
    assert order == sorted(order)


def test_the_system_message_does_not_depend_on_the_instruction() -> None:
    first, second = Conversation(system_message(CONTEXT)), Conversation(system_message(CONTEXT))
    first.ask("shorter")
    second.ask("longer")
    assert first.messages[0] == second.messages[0]
    assert first.messages[1] == {"role": "user", "content": "INSTRUCTION: shorter"}


def test_the_warm_up_sends_what_the_instruction_will_start_with() -> None:
    conversation = Conversation(system_message(CONTEXT))
    warm = conversation.warm_up()
    conversation.ask("shorter")
    assert warm[:-1] == conversation.messages[:-1]
    assert warm[-1] == user_message("") == {"role": "user", "content": ""}


def test_a_follow_up_extends_the_conversation_and_a_rerun_drops_the_last_answer() -> None:
    conversation = Conversation(system_message(CONTEXT))
    conversation.ask("one")
    conversation.answered("answer one")
    conversation.ask("two")
    assert [m["role"] for m in conversation.messages] == ["system", "user", "assistant", "user"]
    conversation.answered("answer two")
    assert conversation.retry()
    assert conversation.messages[-1] == {"role": "user", "content": "INSTRUCTION: two"}
    assert conversation.retry()  # nothing answered since: the same question again
    assert len(conversation.messages) == 4


def test_retry_without_a_question_has_nothing_to_send() -> None:
    assert not Conversation(system_message(CONTEXT)).retry()


def test_asking_again_before_an_answer_replaces_the_question() -> None:
    conversation = Conversation(system_message(CONTEXT))
    conversation.ask("one")
    conversation.ask("two")
    assert conversation.messages[1:] == [user_message("two")]


def test_stream_body_names_the_model_and_slot_only_as_set() -> None:
    messages = Conversation(system_message(CONTEXT)).warm_up()
    body = stream_body(messages, model="", id_slot=-1)
    assert "model" not in body
    assert body["stream"] is True
    assert body["id_slot"] == -1
    assert body["cache_prompt"] is True
    assert body["messages"] == messages
    assert stream_body(messages, model="qwen", id_slot=1)["model"] == "qwen"


def test_warm_up_body_generates_nothing() -> None:
    body = warm_up_body([user_message("")], model="m", id_slot=2)
    assert body["n_predict"] == 0
    assert body["stream"] is False
    assert body["id_slot"] == 2
    assert body["model"] == "m"


def test_sse_parser_joins_lines_cut_anywhere() -> None:
    data = sse("Hel", "lo\n", "wörld") + b"data: [DONE]\n\n"
    for cut in range(1, len(data)):
        parser = SseParser()
        deltas = parser.feed(data[:cut]) + parser.feed(data[cut:]) + parser.finish()
        assert "".join(deltas) == "Hello\nwörld"
        assert parser.done


def test_sse_parser_skips_role_only_chunks_comments_and_junk() -> None:
    role = b'data: {"choices":[{"delta":{"role":"assistant","content":null}}]}\n\n'
    parser = SseParser()
    assert parser.feed(role + b": keep-alive\n\ndata: not json\n\n" + sse("x")) == ["x"]


def test_sse_parser_takes_a_last_line_without_newline() -> None:
    parser = SseParser()
    assert parser.feed(sse("a").rstrip(b"\n")) == []
    assert parser.finish() == ["a"]


def test_sse_parser_raises_on_an_error_in_the_stream() -> None:
    parser = SseParser()
    with pytest.raises(StreamError, match="out of context"):
        parser.feed(b'data: {"error": {"message": "out of context"}}\n\n')


def test_delta_content_reads_streamed_and_whole_replies() -> None:
    assert delta_content({"choices": [{"delta": {"content": "a"}}]}) == "a"
    assert delta_content({"choices": [{"message": {"content": "b"}}]}) == "b"
    assert delta_content({"choices": []}) == ""
    assert delta_content([]) == ""


@pytest.mark.parametrize(
    ("endpoint", "root"),
    [
        ("http://127.0.0.1:8012/v1/chat/completions", "http://127.0.0.1:8012"),
        ("https://host/proxy/v1/chat/completions/", "https://host/proxy"),
        ("http://host:1/chat/completions", "http://host:1"),
    ],
)
def test_chat_root_is_the_server_base(endpoint: str, root: str) -> None:
    assert chat_root(endpoint) == root


def test_a_body_for_another_server_has_only_openai_fields() -> None:
    messages = [user_message("x")]
    body = stream_body(messages, model="m", id_slot=1, llama_server=False)
    assert body == {"messages": messages, "model": "m", "stream": True, "temperature": 0.1}
    llama = stream_body(messages, model="m", id_slot=1)
    assert {"id_slot", "cache_prompt", "samplers", "min_p"} <= set(llama)
