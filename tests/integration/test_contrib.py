"""contrib/: the Prometheus alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`: the alerts fire on the incident's series), and the Grafana
dashboard parses, every panel has a query, every query is valid PromQL and names only
metrics the code exports (the families src/obs/metrics.cpp declares).
RR_SOURCE_ROOT is the project root (meson passes it)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = os.environ.get('RR_SOURCE_ROOT', os.path.join(os.path.dirname(__file__), '..', '..'))
RULES = os.path.join(ROOT, 'contrib', 'prometheus', 'ringrelay-alerts.yml')
RULE_TESTS = os.path.join(ROOT, 'contrib', 'prometheus', 'ringrelay-alerts.test.yml')
DASHBOARD = os.path.join(ROOT, 'contrib', 'grafana', 'ringrelay-dashboard.json')
HISTOGRAM_SERIES = ('_bucket', '_sum', '_count')


def exported_metrics():
    """Family name -> type, as src/obs/metrics.cpp declares them."""
    with open(os.path.join(ROOT, 'src', 'obs', 'metrics.cpp'), encoding='utf-8') as f:
        # append_family / append_single calls and the table of shard totals: each
        # names a family by its name and type, in that order.
        return dict(re.findall(r'"(ringrelay_\w+)",\s*"(counter|gauge|histogram)"', f.read()))


def metrics_named(expr):
    return set(re.findall(r'\bringrelay_[a-z0-9_]+\b', expr))


def unknown_metrics(expr, families):
    unknown = set()
    for name in metrics_named(expr):
        if name in families:
            continue
        base = next((name[:-len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), None)
        if base is None or families.get(base) != 'histogram':
            unknown.add(name)
    return unknown


def promtool(*args):
    return subprocess.run(['promtool'] + list(args), capture_output=True, text=True, timeout=120)


def panels_of(dashboard):
    for panel in dashboard['panels']:
        yield panel
        yield from panel.get('panels', [])


class Contrib(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.families = exported_metrics()
        with open(DASHBOARD, encoding='utf-8') as f:
            cls.dashboard = json.load(f)
        with open(RULES, encoding='utf-8') as f:
            cls.rules_text = f.read()

    def need_promtool(self):
        if not shutil.which('promtool'):
            self.skipTest('promtool is not installed (package prometheus)')

    def test_the_code_exports_the_metrics_the_checks_rely_on(self):
        self.assertEqual(self.families.get('ringrelay_requests_total'), 'counter')
        self.assertEqual(self.families.get('ringrelay_request_duration_seconds'), 'histogram')

    def test_promtool_check_rules_passes(self):
        self.need_promtool()
        proc = promtool('check', 'rules', RULES)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_the_alerts_fire_in_promtool_unit_tests(self):
        self.need_promtool()
        proc = promtool('test', 'rules', RULE_TESTS)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_the_rules_cover_the_runbook_incidents_with_real_metrics(self):
        alerts = re.findall(r'^\s*- alert: (\w+)$', self.rules_text, re.M)
        for name in ('RingrelayKeyStuckBusy', 'RingrelayUpstreamQueueNearFull', 'RingrelayCircuitOpen',
                     'Ringrelay5xxRatioHigh', 'RingrelayAccessLogDrops'):
            self.assertIn(name, alerts)
        exprs = re.findall(r'^\s*expr: (?:\|\n((?:\s{10}.*\n)+)|(.*)$)', self.rules_text, re.M)
        self.assertEqual(len(exprs), len(alerts))
        for block, line in exprs:
            expr = block or line
            self.assertTrue(metrics_named(expr), expr)
            self.assertEqual(unknown_metrics(expr, self.families), set(), expr)

    def dashboard_exprs(self):
        out = []
        for panel in panels_of(self.dashboard):
            if panel.get('type') == 'row':
                continue
            targets = panel.get('targets', [])
            self.assertTrue(targets, 'panel %r has no query' % panel.get('title'))
            for t in targets:
                out.append((panel['title'], t['expr']))
        return out

    def test_every_dashboard_query_names_only_exported_metrics(self):
        exprs = self.dashboard_exprs()
        self.assertGreaterEqual(len(exprs), 10)
        for title, expr in exprs:
            self.assertTrue(metrics_named(expr), '%s: %s' % (title, expr))
            self.assertEqual(unknown_metrics(expr, self.families), set(), '%s: %s' % (title, expr))
        ids = [p['id'] for p in panels_of(self.dashboard)]
        self.assertEqual(len(ids), len(set(ids)), 'panel ids repeat')

    def test_every_dashboard_query_is_valid_promql(self):
        self.need_promtool()
        lines = ['groups:', '  - name: dashboard', '    rules:']
        for i, (_, expr) in enumerate(self.dashboard_exprs()):
            # Grafana's variables, as Grafana would fill them in.
            expr = (expr.replace('$__rate_interval', '5m').replace('$__range', '1h')
                    .replace('$instance', '.*'))
            lines += ['      - record: dashboard:query_%d' % i, '        expr: %s' % json.dumps(expr)]
        with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as f:
            f.write('\n'.join(lines) + '\n')
        self.addCleanup(os.unlink, f.name)
        proc = promtool('check', 'rules', f.name)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == '__main__':
    harness.main()
