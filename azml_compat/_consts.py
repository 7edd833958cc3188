"""Tuning constants and the defaults of every setting: the one place they are defined.

Modules import what they use from here; ``_config`` declares which of them a user can change
(and through which variable). Nothing here reads the environment or imports anything.
"""
from __future__ import annotations

# -- defaults of the settings (see ``_config.SETTINGS``) ------------------------------------------
DEFAULT_FLUSH_TIMEOUT = 30.0  # seconds without progress before the exit stops waiting
DEFAULT_MAX_OUTPUT_BYTES = 512 * 1024 * 1024  # larger files in outputs/ are skipped
DEFAULT_MAX_JOURNAL_BYTES = 1024 * 1024 * 1024  # past it, new records wait in memory
DEFAULT_WAIT_TIMEOUT = 300.0  # seconds without delivery before a bare wait() gives up
# Seconds of a moving delivery the exit waits for: a backlog that would take longer goes on in
# a detached process after the script exits (``_handoff``), so a million points left at the
# end (~150 s on a single-worker server) do not hold a training job alive.
DEFAULT_HANDOFF_AFTER = 30.0
# Seconds per request to a tracking server: a script's sender waits for a slow server's answer
# (it retries anyway); an `azml` command must end within 15 s against a server that accepts
# connections and never answers (10 s + start-up).
DEFAULT_HTTP_TIMEOUT = 30.0
CLI_HTTP_TIMEOUT = 10.0
# Bytes per second a request body (an upload, a streamed download) is allowed at, on top of that
# timeout: 256 KiB/s (2 Mbit/s) lets a 1 GB checkpoint take 68 min over a slow link, while a
# server trickling a byte a second is cut off.
MIN_TRANSFER_RATE = 256 * 1024
# Requests in flight to a tracking server. MLflow's server runs several workers, and on uvicorn
# a kept-alive request stalls ~40 ms between headers and body: overlapping requests hides that.
DEFAULT_MAX_IN_FLIGHT = 4

# az's --output choices, for every `azml` command
OUTPUT_FORMATS = ("json", "jsonc", "yaml", "yamlc", "table", "tsv", "none")

# -- the dispatcher (``_dispatcher``) -------------------------------------------------------------
COMMIT_INTERVAL = 0.05  # seconds between group commits: RAM holds at most this much of the log
SEND_WINDOW = 5_000  # records the sender reads from the journal at a time
TAKE_LIMIT = 20_000  # records per journal transaction
HIGH_WATER = 100_000  # records waiting in RAM (~20 MB) before log() paces itself
LOW_WATER = 20_000
PACE_TIMEOUT = 1.0  # longest a paced log() waits for a writer that does not catch up
# Seconds close() waits for the threads to end when the session closes: they are idle once
# everything is delivered, and a sender waiting to retry wakes at once; only one inside a
# request to a hung store (up to AZML_HTTP_TIMEOUT) is left to end on its own, as a daemon.
CLOSE_TIMEOUT = 2.0
# Seconds the exit measures the delivery rate before it judges whether the rest would fit in
# AZML_HANDOFF_AFTER (one ~1,000-point request takes 0.1-0.2 s on a local server).
HANDOFF_MEASURE = 2.0

# -- the sender's retry policy (``_sender``) ------------------------------------------------------
BACKOFF_START = 0.5  # seconds before the first retry; doubled (with jitter) after each failure
BACKOFF_MAX = 30.0

# -- forks (``_process``) -------------------------------------------------------------------------
# Seconds a fork may wait for our threads to leave SQLite: milliseconds in practice, but the
# first MLflow import (~1-1.5 s) and a new SQLite store's migrations (~2 s; over 10 s seen on
# a loaded 2-core machine) are waited for too. A fork never waits for the network.
FORK_QUIESCE_WAIT = 60.0

# -- azml submit (``_submit``) --------------------------------------------------------------------
# Seconds allowed on top of AZML_FLUSH_TIMEOUT for the run to be created before any failure is
# seen: the sender first imports MLflow (1-2 s alone) and a new SQLite store runs its ~68
# migrations (~2 s). On a loaded 2-core machine that took more than 3 s in all, so a short
# flush bound must not also be the time a working store has to answer.
STARTUP_ALLOWANCE = 60.0

# Seconds between descriptions sent for lists and dicts logged again and again (each is one
# tag of up to 8,000 characters); the last is sent when the run ends.
NOTE_INTERVAL = 1.0

# -- the experiment's runs view (``_view``), written by the sender ----------------------------
# Seconds between writes while a run keeps logging new metric names (each write is a read and
# a write, and on a server a read or two more; the first comes with the first metrics, the
# last before the run ends).
VIEW_INTERVAL = 60.0
VIEW_CHECKS = 4  # looks again after a write where another process may have written between

# -- a tracking server (``_stores.rest``) ---------------------------------------------------------
CREATE_LANDING = 4  # request timeouts a lost runs/create may take to land on the server
