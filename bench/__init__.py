"""Benchmarks for ``make bench``: engage's policies against Vowpal Wabbit and MABWiser.

``python -m bench.policies`` runs the policy benchmark (three seeded logistic
environments with known truth, reward, speed, latency and memory, references in the same run)
and writes ``bench/results/policies.json`` and ``policies.md``. Nothing runs at import; the
references (the ``bench`` extra) are imported only when a reference agent is built.

Modules:
    environments  the three environments and their shared, pre-drawn round streams
    agents        one adapter per learner (ours, Vowpal Wabbit, MABWiser) behind one protocol
    core          the loop, the summaries, latency and memory measurement
    report        tables (rich and markdown), targets, machine description, JSON
    policies      the command line and the orchestration of one benchmark run
    world         the customer simulator's speed at scale (``python -m bench.world``)
"""
