"""Benchmark of the kore_sessions pipeline against the sandbox Kore.ai API.

Run from the repository root::

    python -m bench.run_bench                 # parts a, b and c at full size (~5 minutes)
    python -m bench.run_bench --quick         # small sizes, a smoke test (< 1 minute)
    python -m bench.run_bench --part a --sessions 1000000   # peak memory of a 1M backfill
    python -m bench.messages_backfill         # sessions and ~1M messages (~5 minutes)

See ``bench/README.md`` for what each part measures.
"""
