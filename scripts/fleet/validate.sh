#!/usr/bin/env bash
# Check the SkyPilot task YAML(s) in scripts/fleet and launch.sh's `sky` command lines against a
# pinned SkyPilot, offline: no credentials, no network, no cloud catalog download. Run by hand
# after editing the task YAML or launch.sh; its output is committed as scripts/fleet/validate.out,
# whose accepted-keys block harness/tests/fleet_scripts.rs compares with the YAML's key paths.
#
# Usage: scripts/fleet/validate.sh          (writes scripts/fleet/validate.out and prints it)
#
# Environment:
#   VALIDATE_VENV   the scratch venv (default target/fleet-validate-venv, git-ignored); created and
#                   `pip install skypilot==$SKYPILOT_VERSION` on first use (needs PyPI once)
#   PYTHON          the Python that creates the venv (default python3)
#
# What it checks:
#   1. every scripts/fleet/*.yaml loads with sky.Task.from_yaml (SkyPilot's JSON-schema check of
#      the task and its resources: an unknown or misspelt key is an error);
#   2. every `sky launch` line that `launch.sh --dry-run` prints for instances.example.txt parses
#      with SkyPilot's own CLI parser, and the task it builds (YAML + those overrides, as
#      `sky launch` builds it) has the line's instance type, region, spot flag and env values and
#      keeps the YAML's disk_size and autostop; every `sky down` line parses too. Building the
#      resources needs SkyPilot's AWS catalog: a small fixture (scripts/fleet/fixtures/vms.csv,
#      the example's instance types in us-east-1; its prices are placeholders, not quotes) is
#      seeded into the scratch HOME's catalog directory so nothing is downloaded;
#   3. a broken copy of the YAML (an unknown top-level key, an unknown resources key) is
#      rejected: the script fails if SkyPilot accepts it, so the check above is a real one.
# With the venv in place it passes without any network (`unshare -n scripts/fleet/validate.sh`).
# Not checked offline: cloud credentials and quotas (`sky check`), that the instance types exist
# in the clouds' live catalogs, the setup and run commands themselves, the SSH alias rsync uses.
set -euo pipefail
SKYPILOT_VERSION=0.14.1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
VENV="${VALIDATE_VENV:-$ROOT/target/fleet-validate-venv}"
OUT_FILE="$ROOT/scripts/fleet/validate.out"

if ! "$VENV/bin/python" -c "import sky, sys; sys.exit(sky.__version__ != '$SKYPILOT_VERSION')" 2>/dev/null; then
  echo "validate.sh: creating $VENV with skypilot==$SKYPILOT_VERSION" >&2
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install -q "skypilot==$SKYPILOT_VERSION" >&2
fi

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
# launch.sh's dry run for the example list (no sky needed).
bash scripts/fleet/launch.sh scripts/fleet/instances.example.txt --dry-run --out /tmp/perfledger-fleet \
  > "$SCRATCH/dry-run.txt"

# A scratch HOME: SkyPilot writes its state under ~/.sky and reads no credentials from it.
# SKYPILOT_DISABLE_USAGE_COLLECTION: no usage reporting (it would need the network anyway).
HOME="$SCRATCH/home" SKYPILOT_DISABLE_USAGE_COLLECTION=1 \
  "$VENV/bin/python" - "$SCRATCH/dry-run.txt" scripts/fleet/fixtures/vms.csv <<'PY' | tee "$OUT_FILE"
import contextlib, glob, io, os, shlex, shutil, sys

dry_run_path, fixture = sys.argv[1], sys.argv[2]

import sky
from sky.skylet import constants

# Seed the AWS catalog before anything reads it (read lazily on first use).
cat_dir = os.path.join(os.path.expanduser(constants.CATALOG_DIR), constants.CATALOG_SCHEMA_VERSION, 'aws')
os.makedirs(cat_dir, exist_ok=True)
shutil.copy(fixture, os.path.join(cat_dir, 'vms.csv'))

from sky.client.cli import command as cli
from sky.utils import infra_utils
import yaml

print(f'# scripts/fleet/validate.sh: SkyPilot {sky.__version__} (commit {getattr(sky, "__commit__", "?")}), '
      f'catalog {constants.CATALOG_SCHEMA_VERSION} seeded from {fixture}')
failures = []


def key_paths(node, prefix=''):
    """Every mapping key as a dotted path (nested mappings too; lists are leaves)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f'{prefix}{k}'
            out.append(p)
            out.extend(key_paths(v, p + '.'))
    return out


# 1. Every task YAML loads.
yamls = sorted(glob.glob('scripts/fleet/*.yaml'))
accepted = set()
for path in yamls:
    try:
        task = sky.Task.from_yaml(path)
    except Exception as e:  # noqa: BLE001 - any rejection is a failure, shown as SkyPilot said it
        failures.append(f'{path}: {type(e).__name__}: {e}')
        print(f'FAIL {path}: {type(e).__name__}: {e}')
        continue
    print(f'OK {path} (task {task.name!r}, resources {task.resources}, '
          f'{len(task.envs)} envs, setup {len(task.setup or "")} chars, run {len(task.run or "")} chars)')
    with open(path, encoding='utf-8') as f:
        accepted.update(key_paths(yaml.safe_load(f)))

print('# accepted-keys begin')
for k in sorted(accepted):
    print(k)
print('# accepted-keys end')

# 2. launch.sh's sky command lines, parsed by SkyPilot's CLI, applied as `sky launch` applies them.
lines = [l.rstrip('\n') for l in open(dry_run_path, encoding='utf-8')]
launches = [l for l in lines if l.startswith('+ sky launch ')]
downs = [l for l in lines if l.startswith('+ sky down ')]
print(f'# launch.sh --dry-run scripts/fleet/instances.example.txt: {len(launches)} sky launch, '
      f'{len(downs)} sky down')
for line in launches:
    words = shlex.split(line)[3:]
    try:
        p = cli.launch.make_context('launch', list(words)).params
        info = infra_utils.InfraInfo.from_str(p['infra'])
        with contextlib.redirect_stdout(io.StringIO()):  # its "YAML to run: ..." line
            task = cli._make_task_or_dag_from_entrypoint_with_overrides(
                p['entrypoint'], cloud=info.cloud, region=info.region, zone=info.zone,
                instance_type=p['instance_type'], use_spot=p['use_spot'], env=list(p['env']))
        (res,) = list(task.resources)
        env = dict(p['env'])
        want_spot = env.get('PERFLEDGER_PRICING_MODEL') == 'spot'
        cfg = res.to_yaml_config()
        problems = []
        if res.instance_type != env['PERFLEDGER_INSTANCE']:
            problems.append(f'instance_type {res.instance_type} != {env["PERFLEDGER_INSTANCE"]}')
        if res.region != env['PERFLEDGER_REGION']:
            problems.append(f'region {res.region} != {env["PERFLEDGER_REGION"]}')
        if bool(res.use_spot) != want_spot:
            problems.append(f'use_spot {res.use_spot} for pricing model {env["PERFLEDGER_PRICING_MODEL"]}')
        if cfg.get('disk_size') != 100 or cfg.get('autostop', {}).get('down') is not True:
            problems.append(f'the YAML resources were not kept: {cfg}')
        for k, v in env.items():
            if task.envs.get(k) != v:
                problems.append(f'env {k}={task.envs.get(k)!r}, expected {v!r}')
        if not (p['down'] and p['idle_minutes_to_autostop']):
            problems.append('no -i N --down')
        if problems:
            raise ValueError('; '.join(problems))
        print(f'OK sky launch -c {p["cluster"]}: {res} use_spot={bool(res.use_spot)} '
              f'autostop -i {p["idle_minutes_to_autostop"]} --down; '
              f'envs {", ".join(f"{k}={v}" for k, v in env.items())}')
    except (Exception, SystemExit) as e:  # noqa: BLE001
        failures.append(f'{line}: {type(e).__name__}: {e}')
        print(f'FAIL {line}: {type(e).__name__}: {e}')
for line in downs:
    words = shlex.split(line)[3:]
    try:
        p = cli.down.make_context('down', list(words)).params
        print(f'OK sky down {" ".join(p["clusters"])} (yes={p["yes"]})')
    except (Exception, SystemExit) as e:  # noqa: BLE001
        failures.append(f'{line}: {type(e).__name__}: {e}')
        print(f'FAIL {line}: {type(e).__name__}: {e}')

# 3. Broken copies must be rejected.
base = open('scripts/fleet/perfledger-task.yaml', encoding='utf-8').read()
broken = {
    'unknown top-level key bogus_key': base + '\nbogus_key: 1\n',
    'unknown resources key bogus_resource': base.replace('resources:\n', 'resources:\n  bogus_resource: 1\n', 1),
}
for what, text in broken.items():
    assert text != base
    try:
        sky.Task.from_yaml_str(text)
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f'OK rejected (expected failure), {what}: {type(e).__name__}: {msg}')
    else:
        failures.append(f'broken copy accepted: {what}')
        print(f'FAIL broken copy accepted: {what}')

if failures:
    print(f'# FAILED: {len(failures)} problem(s)')
    sys.exit(1)
print('# all checks passed')
PY
