#!/usr/bin/env python3
"""The ringrelay CLI end to end, on a temporary data directory (REFERENCE.md section 2).

Every subcommand, every exit code (0 ok, 1 runtime error, 2 usage error), --json on
every listing and show, and bad flag values: exit 2, one "ringrelay: ..." line on
stderr, nothing written. Needs RINGRELAY_BIN; exits 77 (skipped) without it.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ.get("RINGRELAY_BIN", "")
SECRET = re.compile(r"^rr-[0-9A-Za-z]{40}$")
KEY_ID = re.compile(r"^k_[0-9A-Za-z]{12}$")
CHANNEL_ID = re.compile(r"^c_[0-9A-Za-z]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


class CliCase(unittest.TestCase):
    """A fresh data directory per test, and helpers to run the binary on it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rr-cli-test-")
        self.data = os.path.join(self.tmp, "data")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_cli(self, *args, data=True, env=None, cwd=None, stdin=None):
        argv = [BIN, *args]
        if data:
            argv += ["--data", self.data]
        full_env = {k: v for k, v in os.environ.items() if k != "RINGRELAY_DATA"}
        full_env.update(env or {})
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=full_env,
                              cwd=cwd or self.tmp, input=stdin)

    def ok(self, *args, **kw):
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.returncode, 0, f"{args}: stderr={r.stderr!r}")
        self.assertEqual(r.stderr, "", f"{args} wrote to stderr")
        return r.stdout

    def ok_json(self, *args, **kw):
        out = self.ok(*args, "--json", **kw)
        return json.loads(out)

    def fails(self, code, *args, mention=None, **kw):
        r = self.run_cli(*args, **kw)
        self.assertEqual(r.returncode, code, f"{args}: stdout={r.stdout!r} stderr={r.stderr!r}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"{args}: stderr must be one line: {r.stderr!r}")
        self.assertTrue(lines[0].startswith("ringrelay: "), lines[0])
        self.assertEqual(r.stdout, "", f"{args}: a failed command prints nothing on stdout")
        if mention:
            self.assertIn(mention, lines[0])
        return lines[0]

    def create_key(self, *flags):
        out = self.ok_json("key", "create", "--name", "k", *flags)
        self.assertRegex(out["id"], KEY_ID)
        self.assertRegex(out["secret"], SECRET)
        return out

    def add_channel(self, *flags, name="ch"):
        base = ["--name", name, "--base-url", "https://api.example.com/v1", "--api-key", "sk-upstream-1",
                "--models", "gpt-4o,gpt-4o-mini"]
        out = self.ok_json("channel", "add", *base, *flags)
        self.assertRegex(out["id"], CHANNEL_ID)
        return out

    def snapshot(self):
        """Everything a command could have changed, for "nothing written" checks."""
        if not os.path.exists(self.data):
            return None
        return (self.ok("key", "list", "--json"), self.ok("channel", "list", "--json"),
                self.ok("block", "list", "--json"))


class HelpAndDispatch(CliCase):
    def test_help_on_every_level(self):
        out = self.ok("--help", data=False)
        for area in ("serve", "key", "channel", "block", "db", "version"):
            self.assertIn(area, out)
        self.assertEqual(self.ok("-h", data=False), out)
        commands = {
            "key": ["create", "list", "show", "update", "revoke", "unrevoke", "rotate"],
            "channel": ["add", "list", "show", "update", "enable", "disable", "remove"],
            "block": ["add", "list", "remove"],
            "db": ["backup", "stats"],
        }
        for area, subs in commands.items():
            text = self.ok(area, "--help", data=False)
            self.assertIn(f"Usage: ringrelay {area}", text)
            for sub in subs:
                self.assertIn(sub, text)
                sub_help = self.ok(area, sub, "--help", data=False)
                self.assertIn(f"Usage: ringrelay {area} {sub}", sub_help)
                self.assertIn("--data DIR", sub_help)
                self.assertIn("--json", sub_help)
        self.assertIn("Usage: ringrelay version", self.ok("version", "--help", data=False))
        self.assertFalse(os.path.exists(self.data), "help must not create the data dir")

    def test_flag_help_lists_each_flag(self):
        text = self.ok("key", "create", "--help", data=False)
        for flag in ("--name", "--group", "--models", "--max-concurrency", "--max-wait", "--rpm", "--tpm",
                     "--quota", "--expires"):
            self.assertIn(flag, text)
        text = self.ok("channel", "add", "--help", data=False)
        for flag in ("--name", "--base-url", "--api-key", "--models", "--type", "--group", "--model-map",
                     "--weight", "--priority", "--max-concurrency", "--timeout"):
            self.assertIn(flag, text)
        # update takes the same flags as create/add
        self.assertIn("--expires", self.ok("key", "update", "--help", data=False))
        self.assertIn("--model-map", self.ok("channel", "update", "--help", data=False))

    def test_missing_or_unknown_commands_are_usage_errors(self):
        self.fails(2, data=False, mention="--help")
        self.fails(2, "frobnicate", data=False, mention="unknown command")
        self.fails(2, "key", data=False, mention="ringrelay key --help")
        self.fails(2, "key", "frob", data=False, mention="unknown key command")
        self.fails(2, "db", "vacuum", data=False)

    def test_version(self):
        self.assertRegex(self.ok("version", data=False), r"^ringrelay \d+\.\d+\.\d+ ")
        v = json.loads(self.ok("version", "--json", data=False))
        self.assertRegex(v["version"], r"^\d+\.\d+\.\d+$")
        self.assertIn("lmdb", v)
        self.assertIn("wolfssl", v)
        self.fails(2, "version", "--bogus", data=False)


class Keys(CliCase):
    def test_create_prints_the_secret_once_and_stores_the_key(self):
        out = self.ok("key", "create", "--name", "ci bot", "--models", "gpt-4o,gpt-4o-mini", "--group", "vip",
                      "--max-concurrency", "3", "--max-wait", "2", "--rpm", "60", "--tpm", "1000", "--quota", "5000",
                      "--expires", "30d")
        secret = re.search(r"rr-[0-9A-Za-z]{40}", out).group(0)
        self.assertRegex(secret, SECRET)
        st = os.stat(self.data)
        self.assertEqual(st.st_mode & 0o777, 0o700)
        keys = self.ok_json("key", "list")
        self.assertEqual(len(keys), 1)
        k = keys[0]
        self.assertRegex(k["id"], KEY_ID)
        self.assertEqual(k["name"], "ci bot")
        self.assertEqual(k["group"], "vip")
        self.assertEqual(k["models"], ["gpt-4o", "gpt-4o-mini"])
        self.assertEqual((k["max_concurrency"], k["max_wait"], k["rpm"], k["tpm"], k["quota"]), (3, 2, 60, 1000, 5000))
        self.assertEqual(k["status"], "active")
        self.assertRegex(k["created_at"], RFC3339)
        self.assertRegex(k["expires_at"], RFC3339)
        self.assertGreater(k["expires_at"], k["created_at"])
        self.assertFalse(k["revoked"])
        self.assertEqual(k["usage"], {"requests": 0, "tokens": 0})
        for listing in (self.ok("key", "list"), self.ok("key", "show", k["id"]),
                        self.ok("key", "list", "--json"), self.ok("key", "show", k["id"], "--json")):
            self.assertNotIn(secret, listing, "the secret is never shown again")

    def test_defaults(self):
        k = self.create_key()
        shown = self.ok_json("key", "show", k["id"])
        self.assertEqual(shown["group"], "default")
        self.assertEqual(shown["models"], [])
        self.assertEqual(shown["max_concurrency"], 1)
        self.assertEqual(shown["max_wait"], 0)
        self.assertIsNone(shown["expires_at"])

    def test_list_is_an_aligned_table(self):
        self.create_key()
        self.ok("key", "create", "--name", "second key")
        lines = self.ok("key", "list").splitlines()
        self.assertEqual(len(lines), 3)
        self.assertTrue(lines[0].startswith("ID"))
        col = lines[0].index("NAME")
        for line in lines[1:]:
            self.assertRegex(line[:col], r"^k_[0-9A-Za-z]{12}\s+$")
        self.assertEqual(self.ok_json("key", "list")[1]["name"], "second key")

    def test_update_takes_the_create_flags(self):
        k = self.create_key("--models", "a")
        self.ok("key", "update", k["id"], "--name", "renamed", "--group", "g2", "--models", "", "--max-concurrency",
                "9", "--max-wait", "4", "--rpm", "1", "--tpm", "2", "--quota", "3", "--expires", "2099-01-01T00:00:00Z")
        s = self.ok_json("key", "show", k["id"])
        self.assertEqual((s["name"], s["group"], s["models"]), ("renamed", "g2", []))
        self.assertEqual((s["max_concurrency"], s["max_wait"], s["rpm"], s["tpm"], s["quota"]), (9, 4, 1, 2, 3))
        self.assertEqual(s["expires_at"], "2099-01-01T00:00:00Z")
        self.ok("key", "update", k["id"], "--expires", "never")
        self.assertIsNone(self.ok_json("key", "show", k["id"])["expires_at"])
        after = self.ok_json("key", "update", k["id"], "--rpm", "77")
        self.assertEqual(after["rpm"], 77)
        self.assertEqual(after["max_concurrency"], 9)

    def test_revoke_unrevoke(self):
        k = self.create_key()
        self.assertIn("revoked", self.ok("key", "revoke", k["id"], "--reason", "leaked in CI logs"))
        s = self.ok_json("key", "show", k["id"])
        self.assertEqual(s["status"], "revoked")
        self.assertTrue(s["revoked"])
        self.assertEqual(s["revoke_reason"], "leaked in CI logs")
        self.assertRegex(s["revoked_at"], RFC3339)
        self.assertIn("leaked in CI logs", self.ok("key", "show", k["id"]))
        s = self.ok_json("key", "unrevoke", k["id"])
        self.assertEqual(s["status"], "active")
        self.assertIsNone(s["revoke_reason"])
        self.assertIsNone(s["revoked_at"])

    def test_rotate_prints_a_new_secret_and_the_grace(self):
        k = self.create_key()
        r = self.ok_json("key", "rotate", k["id"], "--grace", "1h")
        self.assertRegex(r["secret"], SECRET)
        self.assertNotEqual(r["secret"], k["secret"])
        self.assertEqual(r["id"], k["id"])
        s = self.ok_json("key", "show", k["id"])
        self.assertEqual(s["previous_secret_valid_until"], r["previous_secret_valid_until"])
        self.assertGreater(s["previous_secret_valid_until"], s["created_at"])
        out = self.ok("key", "rotate", k["id"])  # default grace 24h
        self.assertRegex(out, r"secret: rr-[0-9A-Za-z]{40}")
        self.assertIn("works until", out)
        stats = self.ok_json("db", "stats")
        self.assertEqual(stats["entries"]["key_ids"], 1)
        self.assertEqual(stats["entries"]["keys"], 3)  # current + two rotated-out secrets

    def test_unknown_ids_are_runtime_errors(self):
        self.create_key()
        for args in (["key", "show", "k_nope"], ["key", "update", "k_nope", "--rpm", "1"],
                     ["key", "revoke", "k_nope"], ["key", "unrevoke", "k_nope"], ["key", "rotate", "k_nope"]):
            self.fails(1, *args, mention="k_nope")

    def test_bad_flag_values_are_usage_errors_and_write_nothing(self):
        bad = [
            ["--max-concurrency", "abc"], ["--max-concurrency", "0"], ["--max-concurrency", "-1"],
            ["--max-concurrency", "99999999999"], ["--max-wait", "x"], ["--rpm", "1.5"], ["--tpm", "-1"],
            ["--quota", "1e3"], ["--expires", "3x"], ["--expires", "2020-01-01T00:00:00Z"], ["--expires", "0s"],
            ["--expires", "2025-02-30T00:00:00Z"], ["--models", "a,,b"], ["--models", "a b"], ["--group", "a b"],
            ["--group", ""], ["--bogus", "1"], ["--rpm"],
        ]
        for flags in bad:
            with self.subTest(flags=flags):
                self.fails(2, "key", "create", "--name", "x", *flags)
                self.assertFalse(os.path.exists(self.data), f"{flags}: the data dir must not be created")
        self.fails(2, "key", "create", mention="--name")
        self.fails(2, "key", "create", "--name", "")
        self.fails(2, "key", "create", "--name", "a\nb")
        self.fails(2, "key", "create", "--name", "x", "--name", "y", mention="twice")
        self.fails(2, "key", "create", "--name", "x", "extra-operand")
        self.assertFalse(os.path.exists(self.data))

        k = self.create_key()
        before = self.snapshot()
        for flags in bad[:-2]:
            with self.subTest(update=flags):
                self.fails(2, "key", "update", k["id"], *flags)
        self.fails(2, "key", "update", k["id"], mention="at least one flag")
        self.fails(2, "key", "rotate", k["id"], "--grace", "soon")
        self.fails(2, "key", "rotate", k["id"], "--grace", "400d")
        self.fails(2, "key", "revoke", k["id"], "--reason", "a\x01b")
        self.fails(2, "key", "show")
        self.fails(2, "key", "show", "a", "b")
        self.fails(2, "key", "list", "extra")
        self.assertEqual(self.snapshot(), before)


class Channels(CliCase):
    def test_add_list_show_hide_the_credential(self):
        c = self.add_channel("--type", "anthropic", "--group", "default,vip", "--model-map", "claude=claude-3",
                             "--weight", "3", "--priority", "-2", "--max-concurrency", "8", "--timeout", "1500ms")
        self.assertEqual(c["type"], "anthropic")
        self.assertEqual(c["base_url"], "https://api.example.com/v1")
        self.assertEqual(c["groups"], ["default", "vip"])
        self.assertEqual(c["models"], ["gpt-4o", "gpt-4o-mini"])
        self.assertEqual(c["model_map"], {"claude": "claude-3"})
        self.assertEqual((c["weight"], c["priority"], c["max_concurrency"], c["timeout_ms"]), (3, -2, 8, 1500))
        self.assertTrue(c["enabled"])
        for text in (self.ok("channel", "list"), self.ok("channel", "list", "--json"),
                     self.ok("channel", "show", c["id"]), self.ok("channel", "show", c["id"], "--json")):
            self.assertNotIn("sk-upstream-1", text, "credential printed without --reveal")
        self.assertIn("sk-upstream-1", self.ok("channel", "show", c["id"], "--reveal"))
        self.assertEqual(self.ok_json("channel", "show", c["id"], "--reveal")["api_key"], "sk-upstream-1")
        listed = self.ok_json("channel", "list")
        self.assertEqual([x["id"] for x in listed], [c["id"]])
        self.assertNotIn("api_key", listed[0])
        self.assertTrue(self.ok("channel", "list").startswith("ID"))

    def test_defaults_and_url_normalisation(self):
        c = self.ok_json("channel", "add", "--name", "n", "--base-url", "HTTP://LocalHost:8081/", "--api-key", "k",
                         "--models", "m")
        self.assertEqual(c["base_url"], "http://localhost:8081")
        self.assertEqual((c["type"], c["groups"], c["weight"], c["priority"]), ("openai", ["default"], 1, 0))
        # No --timeout: unset, so the server's --upstream-timeout applies (null, "inherited").
        self.assertEqual((c["max_concurrency"], c["timeout_ms"], c["model_map"]), (0, None, {}))
        self.assertRegex(self.ok("channel", "show", c["id"]), r"(?m)^timeout\s+inherited$")

    def test_api_key_from_stdin(self):
        c = self.ok_json("channel", "add", "--name", "n", "--base-url", "https://h", "--api-key", "-",
                         "--models", "m", stdin="sk-from-stdin\n")
        self.assertEqual(self.ok_json("channel", "show", c["id"], "--reveal")["api_key"], "sk-from-stdin")

    def test_update_enable_disable_remove(self):
        c = self.add_channel()
        self.ok("channel", "update", c["id"], "--name", "n2", "--base-url", "http://10.0.0.1:9000/p",
                "--api-key", "sk-2", "--models", "m1", "--type", "anthropic", "--group", "g1,g2",
                "--model-map", "a=m1", "--weight", "5", "--priority", "7", "--max-concurrency", "2",
                "--timeout", "5s")
        s = self.ok_json("channel", "show", c["id"], "--reveal")
        self.assertEqual((s["name"], s["base_url"], s["api_key"], s["models"], s["type"]),
                         ("n2", "http://10.0.0.1:9000/p", "sk-2", ["m1"], "anthropic"))
        self.assertEqual((s["groups"], s["model_map"], s["weight"], s["priority"]), (["g1", "g2"], {"a": "m1"}, 5, 7))
        self.assertEqual((s["max_concurrency"], s["timeout_ms"]), (2, 5000))
        self.ok("channel", "update", c["id"], "--timeout", "inherit")
        self.assertIsNone(self.ok_json("channel", "show", c["id"])["timeout_ms"])
        self.assertFalse(self.ok_json("channel", "disable", c["id"])["enabled"])
        self.assertIn("no", self.ok("channel", "list"))
        self.assertTrue(self.ok_json("channel", "enable", c["id"])["enabled"])
        self.assertIn("disabled", self.ok("channel", "disable", c["id"]))
        self.assertIn("enabled", self.ok("channel", "enable", c["id"]))
        self.assertEqual(self.ok_json("channel", "remove", c["id"]), {"id": c["id"], "removed": True})
        self.fails(1, "channel", "show", c["id"], mention="no channel")
        self.assertEqual(self.ok_json("channel", "list"), [])
        stats = self.ok_json("db", "stats")
        self.assertEqual((stats["entries"]["channels"], stats["entries"]["channel_routes"]), (0, 0))

    def test_unknown_ids_are_runtime_errors(self):
        self.add_channel()
        for args in (["channel", "show", "c_nope"], ["channel", "update", "c_nope", "--weight", "2"],
                     ["channel", "enable", "c_nope"], ["channel", "disable", "c_nope"],
                     ["channel", "remove", "c_nope"]):
            self.fails(1, *args, mention="c_nope")

    def test_bad_values_are_usage_errors_and_write_nothing(self):
        required = ["--name", "x", "--base-url", "https://h", "--api-key", "k", "--models", "m"]
        bad = [
            ["--base-url", "ftp://h"], ["--base-url", "http://h:0"], ["--base-url", "http://h:70000"],
            ["--base-url", "http://h/?q=1"], ["--base-url", "http://h/#f"], ["--base-url", "http://u:p@h"],
            ["--base-url", "h.example.com"], ["--base-url", "http://"], ["--type", "azure"], ["--weight", "0"],
            ["--weight", "-1"], ["--priority", "high"], ["--priority", "99999999999"], ["--timeout", "0s"],
            ["--timeout", "25h"], ["--timeout", "10x"], ["--model-map", "a"], ["--model-map", "a=b,a=c"],
            ["--api-key", "a b"], ["--models", ""], ["--models", "a,,b"], ["--group", ""], ["--group", "a b"],
            ["--max-concurrency", "lots"],
        ]
        for flags in bad:
            with self.subTest(flags=flags):
                line = self.fails(2, "channel", "add", *self._override(required, flags))
                if flags[0] == "--base-url":
                    self.assertIn("base URL", line)
                self.assertFalse(os.path.exists(self.data))
        for missing in ("--name", "--base-url", "--api-key", "--models"):
            i = required.index(missing)
            self.fails(2, "channel", "add", *(required[:i] + required[i + 2:]), mention="needs")
        self.assertFalse(os.path.exists(self.data))

        c = self.add_channel()
        before = self.snapshot()
        for flags in bad:
            with self.subTest(update=flags):
                self.fails(2, "channel", "update", c["id"], *flags)
        self.fails(2, "channel", "update", c["id"], mention="at least one flag")
        self.fails(2, "channel", "show", c["id"], "--reveal=yes")
        self.assertEqual(self.snapshot(), before)

    @staticmethod
    def _override(base, flags):
        """base flags with flags[0] replaced (or added)."""
        out = list(base)
        if flags[0] in out:
            i = out.index(flags[0])
            del out[i:i + 2]
        return out + flags


class Blocks(CliCase):
    def test_add_list_remove(self):
        out = self.ok_json("block", "add", "10.1.2.3/8", "--reason", "abuse", "--ttl", "1h")
        self.assertEqual(out["prefix"], "10.0.0.0/8")
        self.assertRegex(out["expires_at"], RFC3339)
        self.ok("block", "add", "2001:db8::1", "--ttl", "never")
        self.ok("block", "add", "192.0.2.7")  # default ttl 24h
        blocks = {b["prefix"]: b for b in self.ok_json("block", "list")}
        self.assertEqual(set(blocks), {"10.0.0.0/8", "2001:db8::1", "192.0.2.7"})
        self.assertEqual(blocks["10.0.0.0/8"]["reason"], "abuse")
        self.assertIsNone(blocks["2001:db8::1"]["expires_at"])
        self.assertTrue(all(b["active"] for b in blocks.values()))
        self.assertRegex(blocks["192.0.2.7"]["expires_at"], RFC3339)
        table = self.ok("block", "list").splitlines()
        self.assertTrue(table[0].startswith("PREFIX"))
        self.assertEqual(len(table), 4)
        self.ok("block", "add", "10.0.0.0/8", "--reason", "replaced", "--ttl", "never")
        blocks = {b["prefix"]: b for b in self.ok_json("block", "list")}
        self.assertEqual((blocks["10.0.0.0/8"]["reason"], blocks["10.0.0.0/8"]["expires_at"]), ("replaced", None))
        self.assertEqual(self.ok_json("block", "remove", "10.0.0.0/8"), {"prefix": "10.0.0.0/8", "removed": True})
        self.fails(1, "block", "remove", "10.0.0.0/8", mention="no block")
        self.assertIn("unblocked", self.ok("block", "remove", "2001:db8::1"))
        self.assertEqual([b["prefix"] for b in self.ok_json("block", "list")], ["192.0.2.7"])

    def test_expired_blocks_are_listed_as_expired(self):
        self.ok("block", "add", "192.0.2.9", "--ttl", "1ms")
        import time
        time.sleep(0.05)
        b = self.ok_json("block", "list")[0]
        self.assertFalse(b["active"])
        self.assertIn("expired", self.ok("block", "list"))

    def test_bad_values_are_usage_errors_and_write_nothing(self):
        for args in (["add", "not-an-ip"], ["add", "10.0.0.0/33"], ["add", "::/129"], ["add", "1.2.3"],
                     ["add", "10.0.0.1", "--ttl", "0s"], ["add", "10.0.0.1", "--ttl", "x"],
                     ["add", "10.0.0.1", "--reason", "a\tb"], ["add"], ["add", "1.1.1.1", "2.2.2.2"],
                     ["remove", "nope"], ["remove"]):
            with self.subTest(args=args):
                self.fails(2, "block", *args)
        self.assertFalse(os.path.exists(self.data))


class Db(CliCase):
    def test_stats(self):
        self.create_key()
        self.add_channel()
        self.ok("block", "add", "10.0.0.1")
        s = self.ok_json("db", "stats")
        self.assertEqual(s["schema_version"], 1)
        self.assertEqual(s["entries"], {"keys": 1, "key_ids": 1, "channels": 1, "channel_routes": 2, "blocks": 1,
                                        "usage": 0, "meta": 1, "responses": 0})
        self.assertGreater(s["map_size"], 0)
        self.assertGreater(s["map_used"], 0)
        self.assertLessEqual(s["map_used"], s["map_size"])
        text = self.ok("db", "stats")
        self.assertIn("schema version", text)
        self.assertIn("map size", text)

    def test_backup_is_a_usable_data_dir(self):
        self.create_key()
        c = self.add_channel()
        self.ok("block", "add", "10.0.0.0/8")
        dest = os.path.join(self.tmp, "backup")
        out = self.ok_json("db", "backup", dest)
        self.assertEqual(out["backup"], dest)
        self.assertTrue(os.path.isfile(os.path.join(dest, "data.mdb")))
        self.assertEqual(os.stat(os.path.join(dest, "data.mdb")).st_mode & 0o077, 0)
        for listing in (("key", "list"), ("channel", "list"), ("block", "list")):
            self.assertEqual(self.ok(*listing, "--json"),
                             self.ok(*listing, "--json", data=False, env={"RINGRELAY_DATA": dest}))
        self.assertEqual(self.ok_json("channel", "show", c["id"], "--reveal", data=False,
                                      env={"RINGRELAY_DATA": dest})["api_key"], "sk-upstream-1")
        self.fails(1, "db", "backup", dest, mention="already holds")
        self.fails(1, "db", "backup", os.path.join(self.tmp, "no", "such", "dir"))
        self.fails(2, "db", "backup")
        self.assertIn("backed up", self.ok("db", "backup", os.path.join(self.tmp, "second")))


class DataDir(CliCase):
    def test_data_dir_from_flag_env_or_default(self):
        self.ok("key", "create", "--name", "via-env", data=False, env={"RINGRELAY_DATA": self.data})
        self.assertEqual(self.ok_json("key", "list")[0]["name"], "via-env")
        self.ok("key", "create", "--name", "via-default", data=False, cwd=self.tmp)
        default_dir = os.path.join(self.tmp, "data")
        self.assertTrue(os.path.isdir(default_dir))
        other = os.path.join(self.tmp, "other")
        self.ok("key", "create", "--name", "via-flag", "--data", other, data=False,
                env={"RINGRELAY_DATA": self.data})
        names = [k["name"] for k in self.ok_json("key", "list", data=False, env={"RINGRELAY_DATA": other})]
        self.assertEqual(names, ["via-flag"])

    def test_unusable_data_dirs_are_runtime_errors_that_say_what_to_do(self):
        not_dir = os.path.join(self.tmp, "file")
        with open(not_dir, "w") as f:
            f.write("x")
        self.fails(1, "key", "list", "--data", not_dir, data=False, mention="--data")
        self.fails(1, "key", "list", "--data", os.path.join(self.tmp, "a", "b"), data=False, mention="parent")
        self.fails(2, "key", "list", "--data", "", data=False)
        if os.geteuid() != 0:
            ro = os.path.join(self.tmp, "ro")
            os.mkdir(ro, 0o500)
            self.fails(1, "key", "create", "--name", "x", "--data", ro, data=False, mention="not writable")

    @unittest.skipUnless(shutil.which("mdb_load"), "mdb_load (lmdb-utils) not installed")
    def test_unknown_schema_version_is_refused(self):
        self.create_key()
        # schema_version = 99 as a little-endian uint32, written with LMDB's own tool.
        subprocess.run(["mdb_load", "-T", "-s", "meta", self.data], input=b"schema_version\n\\63\\00\\00\\00\n",
                       check=True, capture_output=True, timeout=30)
        line = self.fails(1, "key", "list", mention="schema version 99")
        self.assertIn("version 1", line)


if __name__ == "__main__":
    if not BIN or not os.access(BIN, os.X_OK):
        print("RINGRELAY_BIN is not set to the ringrelay binary: skipping", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
