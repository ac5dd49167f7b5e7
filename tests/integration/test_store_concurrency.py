#!/usr/bin/env python3
"""The store shared by several processes, and killed in the middle of writing.

- A writer (CLI runs, one after another) and readers (CLI runs in parallel) on one
  data dir: every read is one consistent snapshot.
- kill -9 of a writer in the middle of a stream of commits loses no committed record
  and corrupts nothing: the data reopens, every committed record is there, LMDB's own
  tools (mdb_stat, mdb_dump, when installed) walk the file cleanly, writes go on.

Needs RINGRELAY_BIN (exit 77 without it). RR_STRESS_WRITER (tests/unit/store/
stress_writer.cpp) enables the tight-loop crash test; without it that case is skipped.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("RINGRELAY_BIN", "")
STRESS = os.environ.get("RR_STRESS_WRITER", "")


def cli(data, *args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "RINGRELAY_DATA"}
    r = subprocess.run([BIN, *args, "--data", data], capture_output=True, text=True, timeout=60, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"ringrelay {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r


def cli_json(data, *args):
    return json.loads(cli(data, *args, "--json").stdout)


class StoreCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rr-store-conc-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assert_lmdb_clean(self):
        """LMDB's own tools read every page of every database without error."""
        for tool, args in (("mdb_stat", ["-a", "-e"]), ("mdb_dump", ["-a"])):
            path = shutil.which(tool)
            if path is None:
                continue
            r = subprocess.run([path, *args, self.data], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, f"{tool}: {r.stderr.decode(errors='replace')}")
        stats = cli_json(self.data, "db", "stats")
        self.assertEqual(stats["schema_version"], 1)
        return stats


class WriterAndReaders(StoreCase):
    def test_readers_see_consistent_snapshots_while_a_writer_runs(self):
        channel = cli_json(self.data, "channel", "add", "--name", "c", "--base-url", "http://127.0.0.1:9",
                           "--api-key", "k", "--models", "m", "--weight", "1", "--priority", "1")["id"]
        rounds = 40
        errors = []
        done = threading.Event()

        def writer():
            try:
                for n in range(2, rounds + 2):
                    # Weight and priority change together in one transaction.
                    cli(self.data, "channel", "update", channel, "--weight", str(n), "--priority", str(n))
                    cli(self.data, "key", "create", "--name", f"key-{n}")
            except Exception as e:  # reported below, from the main thread
                errors.append(f"writer: {e}")
            finally:
                done.set()

        reads = {"channel": 0, "keys": 0}

        def reader(kind):
            last = 0
            while not done.is_set():
                try:
                    if kind == "channel":
                        c = cli_json(self.data, "channel", "show", channel)
                        if c["weight"] != c["priority"]:
                            errors.append(f"torn channel read: weight {c['weight']} priority {c['priority']}")
                        if c["weight"] < last:
                            errors.append(f"channel went back in time: {c['weight']} after {last}")
                        last = c["weight"]
                    else:
                        keys = cli_json(self.data, "key", "list")
                        names = [k["name"] for k in keys]
                        if len(set(names)) != len(names) or len(keys) < last:
                            errors.append(f"bad key listing: {names}")
                        last = len(keys)
                    reads[kind] += 1
                except Exception as e:
                    errors.append(f"reader {kind}: {e}")

        threads = [threading.Thread(target=writer)]
        threads += [threading.Thread(target=reader, args=(k,)) for k in ("channel", "keys", "channel")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        self.assertGreater(reads["channel"], 5)
        self.assertGreater(reads["keys"], 2)
        final = cli_json(self.data, "channel", "show", channel)
        self.assertEqual((final["weight"], final["priority"]), (rounds + 1, rounds + 1))
        self.assertEqual(len(cli_json(self.data, "key", "list")), rounds)
        self.assert_lmdb_clean()


class KillNine(StoreCase):
    def verify_committed(self, committed):
        """Every committed key is present, whole, with the usage written before it was reported."""
        keys = {k["id"]: k for k in cli_json(self.data, "key", "list")}
        for n, key_id in committed:
            self.assertIn(key_id, keys, f"committed key {n} ({key_id}) lost")
            k = keys[key_id]
            self.assertEqual(k["name"], f"stress-{n}")
            self.assertEqual(k["models"], [f"m{n % 13}"])
            self.assertEqual(k["usage"], {"requests": 1, "tokens": n})
        stats = self.assert_lmdb_clean()
        self.assertEqual(stats["entries"]["keys"], stats["entries"]["key_ids"])
        self.assertGreaterEqual(stats["entries"]["key_ids"], len(committed))
        return keys

    @unittest.skipUnless(STRESS and os.access(STRESS, os.X_OK), "RR_STRESS_WRITER not built")
    def test_kill_9_mid_stream_loses_no_committed_record(self):
        committed = []
        rng = random.Random(1234)
        # A reader process loop alongside: readers open the file while the writer grows
        # its (small) map and while a killed writer's transaction is left behind.
        reader_errors = []
        reads = [0]
        stop = threading.Event()

        def reader():
            last = 0
            while not stop.is_set():
                r = cli(self.data, "key", "list", "--json", check=False)
                if r.returncode != 0:
                    reader_errors.append(r.stderr.strip())
                    continue
                count = len(json.loads(r.stdout))
                if count < last:
                    reader_errors.append(f"key count went from {last} to {count}")
                last = count
                reads[0] += 1

        cli(self.data, "db", "stats")  # create the data dir before the reader starts
        reader_thread = threading.Thread(target=reader)
        reader_thread.start()
        self.addCleanup(reader_thread.join)
        self.addCleanup(stop.set)
        for round_no in range(4):
            first = committed[-1][0] + 1 if committed else 0
            proc = subprocess.Popen([STRESS, self.data, "1000000", str(first)], stdout=subprocess.PIPE, text=True)
            # Kill after a random number of commits, at a random moment after it.
            target = len(committed) + rng.randint(20, 120)
            while len(committed) < target:
                line = proc.stdout.readline()
                self.assertTrue(line, "the writer stopped on its own")
                n, key_id = line.split()
                committed.append((int(n), key_id))
            time.sleep(rng.random() * 0.03)
            os.kill(proc.pid, signal.SIGKILL)
            # Lines already written before the kill were committed too.
            for line in proc.stdout:
                n, key_id = line.split()
                committed.append((int(n), key_id))
            proc.wait(timeout=30)
            proc.stdout.close()
            self.assertEqual(proc.returncode, -signal.SIGKILL, f"round {round_no}")
            self.verify_committed(committed)
        stop.set()
        reader_thread.join()
        self.assertEqual(reader_errors, [])
        self.assertGreater(reads[0], 3)
        created = cli_json(self.data, "key", "create", "--name", "after-the-crashes")
        self.assertIn(created["id"], {k["id"] for k in cli_json(self.data, "key", "list")})

    def test_kill_9_of_a_cli_write_loop_loses_no_committed_record(self):
        # A shell loop of `key create`, killed with its current child mid-write.
        script = (f'i=0; while :; do "{BIN}" key create --name loop-$i --data "{self.data}" --json || exit 1; '
                  'i=$((i+1)); done')
        proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
        committed = []
        deadline = time.monotonic() + 60
        while len(committed) < 25 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            self.assertTrue(line, "the loop stopped on its own")
            committed.append(json.loads(line))
        time.sleep(random.random() * 0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        for line in proc.stdout:
            if line.strip():
                try:
                    committed.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line cut by the kill: not reported as committed
        proc.wait(timeout=30)
        proc.stdout.close()
        keys = {k["id"]: k["name"] for k in cli_json(self.data, "key", "list")}
        for c in committed:
            self.assertEqual(keys.get(c["id"]), c["name"], f"committed {c['name']} lost")
        self.assertGreaterEqual(len(committed), 25)
        self.assert_lmdb_clean()
        cli(self.data, "key", "create", "--name", "after")


if __name__ == "__main__":
    if not BIN or not os.access(BIN, os.X_OK):
        print("RINGRELAY_BIN is not set to the ringrelay binary: skipping", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
