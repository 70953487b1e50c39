"""Sizes of the scale simulation (bench_scale.py), each overridable by its BENCH_SCALE_* variable."""

import os

SOURCES = int(os.environ.get("BENCH_SCALE_SOURCES", 300))  # data sources in the worker simulation (2 per integration)
ORGS = int(os.environ.get("BENCH_SCALE_ORGS", 30))
INTERVAL = int(os.environ.get("BENCH_SCALE_INTERVAL", 45))  # seconds between a source's syncs (the schedule tick)
TICKS = float(os.environ.get("BENCH_SCALE_TICKS", 2))  # how many ticks each worker configuration runs
PEOPLE = 20  # people per directory sync (2 pages of 10)
LATENCY_MS = 50
RATE_LIMITED = 0.02  # share of vendor calls answered 429 with Retry-After: 1
BEAT_SOURCES = int(os.environ.get("BENCH_SCALE_BEAT_SOURCES", 50_000))
BEAT_ORGS = int(os.environ.get("BENCH_SCALE_BEAT_ORGS", 500))
BEAT_INTERVAL = 300
BEAT_SECONDS = 15.0
DISPATCH_SECONDS = 30.0  # three dispatcher ticks
DISPATCH_EVERY = 10.0  # the dispatcher's beat interval (integrations/migrations/0005)
ACTIVATIONS = int(os.environ.get("BENCH_SCALE_ACTIVATIONS", 100))
ACTIVATION_LATENCY_MS = 150
STAKEHOLDERS = 3  # per activation: the template fans out invitations and e-mails per stakeholder
PARTS = set(os.environ.get("BENCH_SCALE_PARTS", "syncs,beat,activations").split(","))  # to run one part while working on it
DISCARD_QUEUE = "bench-scale-beat"
