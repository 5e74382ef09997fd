"""protocol: /infill request bodies and parsing of replies, errors and /props."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llama_nvim.config import Config, parse_config
from llama_nvim.context import LocalContext
from llama_nvim.protocol import (
    RESPONSE_FIELDS,
    Completion,
    ExtraChunk,
    ProtocolError,
    ServerProps,
    StreamError,
    StreamReader,
    Timings,
    build_infill_body,
    build_priming_body,
    error_message,
    merge_stream,
    parse_completion,
    parse_props,
)

CONTEXT = LocalContext(prefix="def f():\n", prompt="    ret", suffix="\nprint(f())\n", n_indent=4)


def body(config: Config | None = None, extra: tuple[ExtraChunk, ...] = ()) -> dict[str, Any]:
    return build_infill_body(CONTEXT, extra, config or Config(), n_predict=77, t_max_predict_ms=333)


# -- request body ---------------------------------------------------------------------


def test_body_carries_the_local_context() -> None:
    b = body()
    assert b["input_prefix"] == "def f():\n"
    assert b["prompt"] == "    ret"
    assert b["input_suffix"] == "\nprint(f())\n"
    assert b["n_indent"] == 4


def test_body_limits_come_from_arguments_and_config() -> None:
    config = Config(t_max_prompt_ms=123, n_predict=5, t_max_predict_ms=9)
    b = body(config)
    assert b["n_predict"] == 77
    assert b["t_max_predict_ms"] == 333
    assert b["t_max_prompt_ms"] == 123


def test_body_sampling_and_caching_match_llama_vim() -> None:
    b = body()
    assert b["samplers"] == ["top_k", "top_p", "infill"]
    assert b["top_k"] == 40
    assert b["top_p"] == pytest.approx(0.9)
    assert b["cache_prompt"] is True
    assert b["stream"] is True, "streamed, so a cancelled request stops the server"


def test_body_asks_only_for_the_fields_shown() -> None:
    fields = body()["response_fields"]
    assert fields == list(RESPONSE_FIELDS)
    assert "content" in fields
    assert "timings/prompt_n" in fields
    assert "timings/cache_n" in fields
    assert "prompt" not in fields


@pytest.mark.parametrize("id_slot", [-1, 0, 3])
def test_body_pins_the_configured_slot(id_slot: int) -> None:
    assert body(Config(id_slot=id_slot))["id_slot"] == id_slot


def test_a_leased_slot_goes_into_request_and_priming_bodies() -> None:
    config = Config()  # id_slot -1: the lease decides
    context = LocalContext(prefix="", suffix="", prompt="x", n_indent=0)
    infill = build_infill_body(context, [], config, n_predict=8, t_max_predict_ms=10, id_slot=1)
    assert infill["id_slot"] == 1
    assert build_priming_body((), config, id_slot=1)["id_slot"] == 1
    assert build_priming_body((), config)["id_slot"] == -1


def test_body_stop_strings_from_config_as_list() -> None:
    assert body()["stop"] == []
    assert body(Config(stop_strings=("\n\n", "END")))["stop"] == ["\n\n", "END"]


def test_body_names_no_model_unless_one_is_configured() -> None:
    assert "model" not in body()
    assert "model" not in build_priming_body((), Config())


@pytest.mark.parametrize("raw", [{"model_fim": "qwen-coder"}, {"model": "qwen-coder"}])
def test_body_and_priming_body_name_the_configured_fim_model(raw: dict[str, Any]) -> None:
    config, problems = parse_config(raw)
    assert problems == []
    assert body(config)["model"] == "qwen-coder"
    assert build_priming_body((), config)["model"] == "qwen-coder"


def test_the_instruction_model_is_not_sent_for_fill_in_the_middle() -> None:
    assert "model" not in body(Config(model_inst="gpt-oss"))


def test_body_input_extra_lists_chunks() -> None:
    extra = (ExtraChunk("a.py", "x = 1\n"), ExtraChunk("b.py", "y\n"))
    assert body(extra=extra)["input_extra"] == [
        {"filename": "a.py", "text": "x = 1\n"},
        {"filename": "b.py", "text": "y\n"},
    ]
    assert body()["input_extra"] == []


def test_body_is_json_serialisable_and_round_trips() -> None:
    b = body(extra=(ExtraChunk("ü.py", "ß"),))
    assert json.loads(json.dumps(b)) == b


# -- parse_completion -----------------------------------------------------------------


def test_parse_completion_reads_flattened_timings_as_response_fields_returns_them() -> None:
    data = {
        "content": "urn 1",
        "stop_type": "eos",  # not asked for, not read
        "truncated": False,
        "tokens_cached": 30,
        "tokens_evaluated": 12,
        "timings/prompt_n": 12,
        "timings/prompt_ms": 4.5,
        "timings/predicted_n": 3,
        "timings/predicted_ms": 9.25,
        "timings/cache_n": 18,
    }
    assert parse_completion(data) == Completion(
        content="urn 1",
        timings=Timings(prompt_n=12, prompt_ms=4.5, predicted_n=3, predicted_ms=9.25, cache_n=18),
        tokens_cached=30,
        tokens_evaluated=12,
        truncated=False,
    )


def test_parse_completion_reads_nested_timings() -> None:
    data = {"content": "x", "timings": {"prompt_n": 2, "predicted_ms": 1.0, "cache_n": 7}}
    t = parse_completion(data).timings
    assert (t.prompt_n, t.predicted_ms, t.cache_n) == (2, 1.0, 7)
    assert t.prompt_ms == 0.0


def test_parse_completion_defaults_missing_fields() -> None:
    assert parse_completion({"content": ""}) == Completion(content="")


@pytest.mark.parametrize(
    "odd",
    [
        {"tokens_cached": "30", "timings/prompt_n": None, "truncated": 1},
        {"tokens_cached": True, "timings": {"prompt_n": [1]}, "truncated": "yes"},
        {"timings": "fast", "stop_type": None},
    ],
)
def test_parse_completion_ignores_odd_optional_fields(odd: dict[str, Any]) -> None:
    c = parse_completion({"content": "x", **odd})
    assert c == Completion(content="x")


def test_parse_completion_truncated_only_when_true() -> None:
    assert parse_completion({"content": "x", "truncated": True}).truncated is True


@pytest.mark.parametrize("data", [[], "content", None, 3, ["content"]])
def test_parse_completion_rejects_non_objects(data: Any) -> None:
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        parse_completion(data)


@pytest.mark.parametrize(
    ("content", "type_name"), [(None, "NoneType"), (5, "int"), (["a"], "list"), ({}, "dict")]
)
def test_parse_completion_rejects_content_that_is_not_a_string(
    content: Any, type_name: str
) -> None:
    with pytest.raises(ProtocolError, match=f"'content' is {type_name}, not a string"):
        parse_completion({"content": content})


def test_parse_completion_rejects_missing_content() -> None:
    with pytest.raises(ProtocolError, match="'content' is NoneType"):
        parse_completion({"tokens_cached": 1})


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


# -- error_message --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"error": {"code": 400, "message": "bad input", "type": "x"}}, "bad input"),
        ({"error": "plain text"}, "plain text"),
        ({"error": {"code": 500}}, None),
        ({"error": {"message": 5}}, None),
        ({"message": "no error key"}, None),
        (["error"], None),
        ("error", None),
        (None, None),
    ],
)
def test_error_message_reads_llama_server_error_bodies(data: Any, expected: str | None) -> None:
    assert error_message(data) == expected


# -- parse_props ----------------------------------------------------------------------


def test_parse_props_reads_model_context_build_and_slots() -> None:
    data = {
        "default_generation_settings": {"n_ctx": 8192, "temperature": 0.8},
        "model_path": "/models/qwen-fim.gguf",
        "model_alias": "qwen",
        "build_info": "b5000-abc",
        "total_slots": 4,
    }
    assert parse_props(data) == ServerProps(
        n_ctx=8192, model="/models/qwen-fim.gguf", build="b5000-abc", total_slots=4
    )


def test_parse_props_falls_back_to_model_alias() -> None:
    assert parse_props({"model_alias": "qwen"}).model == "qwen"


def test_parse_props_missing_fields_stay_empty() -> None:
    assert parse_props({}) == ServerProps()


@pytest.mark.parametrize(
    "data",
    [
        {"default_generation_settings": "n_ctx=4096", "model_path": 7, "total_slots": "2"},
        {"default_generation_settings": {"n_ctx": "4096"}, "model_path": ["m"]},
    ],
)
def test_parse_props_ignores_odd_fields(data: dict[str, Any]) -> None:
    props = parse_props(data)
    assert (props.n_ctx, props.model, props.total_slots) == (0, "", 0)


@pytest.mark.parametrize("data", [[], "props", None])
def test_parse_props_rejects_non_objects(data: Any) -> None:
    with pytest.raises(ProtocolError, match="/props"):
        parse_props(data)


# -- streamed replies ----------------------------------------------------------------------


def _event(data: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def test_a_stream_is_joined_into_one_reply() -> None:
    raw = (
        _event({"content": "ab", "stop": False})
        + _event({"content": "c\n", "stop": False})
        + _event({"content": "", "stop": True, "timings/prompt_n": 7, "tokens_cached": 9})
    )
    merged = merge_stream(raw)
    assert merged["content"] == "abc\n"
    completion = parse_completion(merged)
    assert completion.content == "abc\n"
    assert completion.timings.prompt_n == 7
    assert completion.tokens_cached == 9


def test_a_stream_read_as_it_arrives_tells_each_growth_and_ends_as_one_reply() -> None:
    raw = (
        _event({"content": "ab", "stop": False})
        + _event({"content": "", "stop": False})
        + _event({"content": "c\n", "stop": False})
        + _event({"content": "", "stop": True, "timings/prompt_n": 7})
    )
    reader = StreamReader()
    seen: list[str] = []
    for i in range(0, len(raw), 5):  # pieces that cut events anywhere
        if reader.feed(raw[i : i + 5]):
            seen.append(reader.content)
    assert seen == ["ab", "abc\n"]
    assert reader.result() == merge_stream(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _event({"content": "ab", "stop": False}),  # cut before the last event
        b"data: {not json}\n\n",
        _event({"content": 5, "stop": True}),
        b"data: [1, 2]\n\n",
    ],
)
def test_a_broken_stream_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        merge_stream(raw)


def test_an_error_event_in_the_stream_is_reported() -> None:
    raw = _event({"content": "a", "stop": False}) + _event(
        {"error": {"code": 500, "message": "boom"}}
    )
    with pytest.raises(StreamError, match="boom"):
        merge_stream(raw)
