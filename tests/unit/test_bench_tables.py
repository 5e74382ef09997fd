"""The benchmarks' pure pieces: per-editor ratios, the growth table, socket lookup, SSE replies."""

from __future__ import annotations

from tests.bench.procs import tcp_inode
from tests.bench.proxy import Exchange, last_event
from tests.bench.tables import (
    EditorFigures,
    growth_row,
    growth_rows,
    kv_evaluated,
    markdown_table,
    together_rows,
)


def editor(prompt_n: float, slots: list[int]) -> EditorFigures:
    return EditorFigures(
        requests=10,
        answered=8,
        prompt_n=prompt_n,
        cache_n=0.0,
        visible_pct=50.0,
        latency_p50=None,
        slots=slots,
    )


def answered(prompt_n: int, cache_n: int, *, path: str = "/infill") -> Exchange:
    ex = Exchange(conn=1, method="POST", path=path, t_start=1, t_sent=2, t_done=3, status=200)
    ex.streamed = {"stop": True, "timings/prompt_n": prompt_n, "timings/cache_n": cache_n}
    return ex


def test_together_rows_give_each_editor_its_ratio_and_verdict() -> None:
    alone = {"A": editor(1000, [0]), "B": editor(2000, [0])}
    together = {"A": editor(1200, [0]), "B": editor(3000, [1])}
    header, rows = together_rows(together, alone)
    assert len(rows) == 2
    assert len(rows[0]) == len(header)
    assert rows[0][:5] == ["A", "1000", "1200", "1.20", "MET"]
    assert rows[1][:5] == ["B", "2000", "3000", "1.50", "MISSED"]
    assert rows[0][5] == "125.0 / 150.0"
    assert rows[1][-1] == "1"
    assert rows[0][7] == "50.0 / 50.0"
    assert rows[0][8] == "- / -"


def test_a_ratio_over_nothing_is_no_verdict() -> None:
    _, rows = together_rows({"A": editor(5, [-1])}, {"A": editor(0, [])})
    assert rows[0][3:5] == ["-", "n/a"]


def test_kv_evaluated_counts_answered_infill_only() -> None:
    cancelled = answered(100, 100)
    cancelled.cancelled = True
    exchanges = [answered(10, 90), answered(5, 0), cancelled, answered(7, 7, path="/slots")]
    assert kv_evaluated(exchanges) == 105


def test_growth_rows_divide_by_keys() -> None:
    figures: dict[str, float | None] = {
        "keys": 100,
        "infill_requests": 40,
        "prompt_n": 2500,
        "helper_cpu_ms": 150,
        "server_cpu_ms": None,
        "visible_pct": 80.0,
        "latency_p50": 60.0,
    }
    row = growth_row("-fa off", 8192, 16, figures, [answered(10, 90).__dict__])
    header, rows = growth_rows([row])
    cells = dict(zip(header, rows[0], strict=True))
    assert cells["n_ctx"] == "8k"
    assert cells["ring chunks"] == "16"
    assert cells["prompt_n / key"] == "25.0"
    assert cells["KV evaluated / key"] == "1"
    assert cells["host CPU ms / key"] == "1.500"
    assert cells["server CPU ms / key"] == "-"
    assert growth_rows([growth_row("", 32768, 0, figures, [])])[1][0][:2] == ["(defaults)", "32k"]


def test_markdown_table_aligns_numbers_right() -> None:
    assert markdown_table(["a", "b"], [["x", "1"]]).split("\n") == [
        "| a | b |",
        "|---|---:|",
        "| x | 1 |",
    ]


def test_tcp_inode_finds_the_client_side_of_a_connection() -> None:
    table = "\n".join(
        [
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
            "   uid  timeout inode",
            # the server side (proxy port 0x1F90 = 8080 -> client port 0xC350 = 50000)
            "   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000"
            "  1000        0 111 1 0 20 4 30 10 -1",
            # a closed connection of the same ports: no inode any more
            "   1: 0100007F:C350 0100007F:1F90 06 00000000:00000000 03:00000000 00000000"
            "     0        0 0 3 0",
            "   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000"
            "  1000        0 222 1 0 20 4 30 10 -1",
        ]
    )
    assert tcp_inode(table, 50000, 8080) == 222
    assert tcp_inode(table, 8080, 50000) == 111
    assert tcp_inode(table, 50001, 8080) is None


def test_last_event_of_a_streamed_reply() -> None:
    body = b'data: {"content": "a"}\n\n'
    body += b'data: {"content": "", "stop": true, "timings/prompt_n": 3}\n\n'
    assert last_event(body) == {"content": "", "stop": True, "timings/prompt_n": 3}
    assert last_event(b"not events") == {}
