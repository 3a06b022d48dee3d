"""`lessismore ...`: the command line. Thin: every command calls the library or a DVC/Prefect entry point.

Heavy imports (torch, transformers, prefect, dvc) stay inside the commands, so `lessismore --help` is instant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from lessismore import contract as c

app = typer.Typer(
    help="LIMA-style 'less is more' fine-tuning: a DVC pipeline orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
)

Root = Annotated[Path, typer.Option(help="the repository root (where dvc.yaml and params.yaml are)")]


@app.command()
def run(
    root: Root = Path("."),
    force: Annotated[bool, typer.Option(help="re-run stages even when DVC says they are unchanged")] = False,
    stage: Annotated[list[str] | None, typer.Option(help="run only this stage (repeatable)")] = None,
) -> None:
    """Run the pipeline as a Prefect flow: one task per DVC stage, in DAG order."""
    cmd = [sys.executable, str(root / "flows" / "pipeline.py"), "--root", str(root)]
    cmd += ["--force"] if force else []
    for name in stage or []:
        cmd += ["--stage", name]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def report(root: Root = Path(".")) -> None:
    """Print where the report is and the headline numbers (win / tie / loss against each baseline)."""
    from rich.console import Console
    from rich.table import Table

    page, metrics = root / "reports" / "index.html", root / "metrics" / "judge.json"
    if not metrics.exists():
        typer.echo(f"{metrics} not found: run the pipeline first (`make demo`, `dvc repro` or `lessismore run`)")
        raise typer.Exit(1)
    judge = json.loads(metrics.read_text())
    table = Table(title=f"{judge.get('candidate', 'candidate')} vs baselines (judge: {judge.get('primary', '?')})")
    for col in ("baseline", "win", "tie", "loss", "win 95% CI", "pairs", "invalid"):
        table.add_column(col)
    for name, m in judge.get("baselines", {}).items():
        lo, hi = m.get("ci", {}).get("win") or (None, None)
        row = [_share(m.get(k)) for k in ("win", "tie", "loss")]
        table.add_row(name, *row, f"{_share(lo)}-{_share(hi)}", str(m.get("n", "")), str(m.get("invalid", "")))
    console = Console()
    console.print(table)
    rel = judge.get("reliability", {})
    if rel.get("position_consistency") is not None:
        console.print(f"judge position consistency: {rel['position_consistency']:.0%} of pairs agree when swapped")
    console.print(f"report: {page.resolve()}" + ("" if page.exists() else "  (not built yet: run the report stage)"))


@app.command()
def plots(
    root: Root = Path("."),
    out: Annotated[Path, typer.Option(help="where the page goes, relative to the root")] = c.PLOTS_PAGE,
) -> None:
    """`dvc plots show` with vega inlined: the training curves as one HTML page that renders offline (no CDN)."""
    from lessismore.report.plots import write_offline_template

    template = write_offline_template(root / ".dvc" / "tmp" / "plots_offline.html")
    cmd = [sys.executable, "-m", "dvc", "plots", "show", "--html-template", str(template.resolve()), "-o", str(out)]
    code = subprocess.call(cmd, cwd=root)
    if code == 0:
        typer.echo(f"plots: {(root / out / 'index.html').resolve()}")
    raise typer.Exit(code)


def _share(x: float | None) -> str:
    """A share as a percentage; None (no valid pairs) as n/a rather than a misleading 0%."""
    return "n/a" if x is None else f"{x:.0%}"


@app.command("check-params")
def check_params(
    path: Annotated[Path, typer.Argument(help="params file")] = Path("params.yaml"),
    profile: Annotated[Path | None, typer.Option(help="an overlay from profiles/ to merge first")] = None,
) -> None:
    """Validate a params file (and optional profile overlay); print every problem at once."""
    from lessismore.config import ConfigError, load_params

    try:
        params = load_params(path, profile)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    typer.echo(f"{path}{' + ' + str(profile) if profile else ''}: ok ({params.base.experiment})")


@app.command()
def profile(
    name: Annotated[str, typer.Argument(help="a file in profiles/ without .yaml, e.g. lima or tiny")],
    root: Root = Path("."),
) -> None:
    """Merge profiles/NAME.yaml onto params.yaml and write params.yaml, its comments kept (git diff shows the change;
    git checkout reverts). Or, without touching the file: `dvc exp run -S train.lr=1e-5` for one experiment."""
    from lessismore.config import ConfigError, merge, parse_params, read_yaml
    from lessismore.yamlconfig import merge_into_file

    overlay = root / "profiles" / f"{name}.yaml"
    if not overlay.exists():
        known = sorted(p.stem for p in (root / "profiles").glob("*.yaml"))
        typer.echo(f"no profile {name!r}; profiles/ has {known}", err=True)
        raise typer.Exit(2)
    changes = read_yaml(overlay)
    try:
        parse_params(merge(read_yaml(root / "params.yaml"), changes), f"params.yaml + {overlay}")  # refuse invalid
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from err
    merge_into_file(root / "params.yaml", overlay)
    typer.echo(f"params.yaml now has profile {name!r} merged in (its comments kept)")


@app.command()
def annotate(
    root: Root = Path("."),
    host: Annotated[str, typer.Option(help="interface to bind; anything but 127.0.0.1/localhost needs --token")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port")] = 8765,
    token: Annotated[
        str | None, typer.Option(envvar="LESSISMORE_ANNOTATE_TOKEN", help="required off localhost (>= 16 chars)")
    ] = None,
    overlap: Annotated[int, typer.Option(help="items every annotator judges (human-human agreement)")] = 10,
    annotator: Annotated[list[str] | None, typer.Option(help="a fixed roster (repeatable); none: first come")] = None,
    db: Annotated[Path, typer.Option(help="the SQLite file of submissions")] = c.ANNOTATE_DB,
    export: Annotated[bool, typer.Option("--export", help="write outputs/human_judgments.jsonl and exit")] = False,
) -> None:
    """Serve the blind human-judging page (pairwise + excellent/pass/fail), or export what people judged."""
    from lessismore.annotate import load_items
    from lessismore.annotate.app import serve
    from lessismore.annotate.store import export as export_judgments
    from lessismore.config import load_params

    if export:
        n = export_judgments(root / db, root / c.HUMAN_JUDGMENTS)
        typer.echo(f"{n} judgments -> {c.HUMAN_JUDGMENTS} (then `dvc repro judge report`)")
        return
    params = load_params(root / "params.yaml")
    items, unpaired = load_items(
        root / c.RESPONSES,
        root / c.VALIDATED / c.PROMPTS,
        params.judge.candidate,
        params.judge.baselines,
    )
    typer.echo(f"{len(items)} items (unpaired prompts: {unpaired}) on http://{host}:{port}/")
    try:
        serve(
            root / db,
            items,
            host=host,
            port=port,
            token=token,
            overlap=overlap,
            seed=params.base.seed,
            roster=tuple(annotator or ()),
        )
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


# ----------------------------------------------------------------------------------------------------------------
# storage: the DVC remote on S3 (lessismore.remote)

Jobs = Annotated[int | None, typer.Option(help="parallel transfers (DVC's default: 4 per CPU core)")]


@app.command()
def push(root: Root = Path("."), jobs: Jobs = None) -> None:
    """Push every stage's cached outputs to the S3 remote (LESSISMORE_REMOTE_URL, or DVC's configured remote)."""
    _sync(root, "push", jobs)


@app.command()
def pull(root: Root = Path("."), jobs: Jobs = None) -> None:
    """Pull every stage's outputs from the S3 remote into .dvc/cache and the workspace."""
    _sync(root, "pull", jobs)


def _sync(root: Path, op: Literal["push", "pull"], jobs: int | None) -> None:
    from lessismore.remote import RemoteError, sync

    try:
        sync(root, op, jobs=jobs, echo=typer.echo)
    except RemoteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err


@app.command()
def remote(root: Root = Path(".")) -> None:
    """Show which remote push/pull use, where it is configured, and which credentials apply (never their values)."""
    import os

    from lessismore.remote import RemoteError, resolve, where

    try:
        chosen = resolve(root)
    except RemoteError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    creds = [
        n
        for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
        if os.environ.get(n)
    ]
    typer.echo(f"remote {chosen.name!r}: {where(chosen)} (from {chosen.origin})")
    typer.echo(
        f"credentials: {', '.join(creds) + ' set' if creds else 'none in the environment: ~/.aws or an instance role'}"
    )


# ----------------------------------------------------------------------------------------------------------------
# lineage: where a number, an output or an example came from (lessismore.trace, lessismore.explain)

AsJson = Annotated[bool, typer.Option("--json", help="print JSON (for scripts) instead of a tree")]


@app.command()
def lineage(
    target: Annotated[
        str,
        typer.Argument(help="an output (models/finetuned), a metric (metrics/judge.json:baselines.base.win), a stage"),
    ],
    root: Root = Path("."),
    as_json: AsJson = False,
) -> None:
    """Trace an output or a metric back through dvc.lock to its source files: stages, params, hashes, git commit."""
    from lessismore.trace import lineage_of, render_lineage

    _show(lambda: lineage_of(root, target), render_lineage, as_json)


@app.command()
def explain(
    example_id: Annotated[str, typer.Argument(help="an example, prompt or quarantine id, or a unique prefix of one")],
    root: Root = Path("."),
    as_json: AsJson = False,
) -> None:
    """Where an example came from (source, file, row, license) and why curation kept or dropped it."""
    from lessismore.explain import explain_example, load_rows, render_example

    metrics = root / "metrics" / "curate.json"
    curate = json.loads(metrics.read_text()) if metrics.exists() else None
    _show(lambda: explain_example(example_id, load_rows(root), curate), render_example, as_json)


@app.command("stats")
def stats_cmd(
    files: Annotated[list[Path], typer.Argument(help="judgment files, e.g. AlpacaEval annotations.json (several)")],
    fmt: Annotated[
        str, typer.Option("--format", help="alpaca_eval | mtbench_human | mtbench_judge | pairs")
    ] = "alpaca_eval",
    quarantine: Annotated[Path | None, typer.Option(help="write the refused rows here (JSONL)")] = None,
    seed: Annotated[int, typer.Option(help="seeds the cross-validation folds and the bootstrap")] = 0,
    as_json: AsJson = False,
) -> None:
    """Win rates of published judgments as AlpacaEval defines them, per model: raw (weighted) with its standard
    error, discrete, and length-controlled (AlpacaEval 2's GLM). Refused rows are listed with file, row and why."""
    from lessismore.errors import UserError
    from lessismore.judge.external import read_external
    from lessismore.judge.winrate import stats

    try:
        rows, refused = read_external(fmt, files)
    except UserError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if quarantine is not None:
        from lessismore.records import write_jsonl

        write_jsonl(quarantine, [vars(r) for r in refused])
    for r in refused[:20]:
        typer.echo(f"refused: {r.detail} ({r.reason})", err=True)
    if len(refused) > 20:
        typer.echo(f"refused: {len(refused) - 20} more (--quarantine FILE lists them all)", err=True)
    models = stats(rows, seed=seed)
    result = {"format": fmt, "files": [str(f) for f in files], "refused": len(refused), "models": models}
    _show(lambda: result, _stats_table, as_json)


@app.command("judge-audit")
def judge_audit(
    pairs: Annotated[
        Path, typer.Option(help="labelled pairs (input, output_1, output_2, label), e.g. the shipped set")
    ],
    judge: Annotated[str | None, typer.Option(help="a judge of params judge.judges (default: judge.primary)")] = None,
    root: Root = Path("."),
    as_json: AsJson = False,
) -> None:
    """Run a configured judge on human-labelled pairs: its agreement with the labels (exact, tie-discounted,
    without ties) with 95% intervals, and its position consistency, first-position preference and length bias."""
    from lessismore.config import load_params
    from lessismore.errors import UserError
    from lessismore.judge import load_template
    from lessismore.judge.audit import audit
    from lessismore.judge.cache import KeyedCache
    from lessismore.judge.external import read_external
    from lessismore.judge.factory import open_judge

    try:
        params = load_params(root / "params.yaml")
        spec = params.judge
        name = judge or spec.primary
        entry = next((j for j in spec.judges if j.name == name), None)
        if entry is None:
            raise LookupError(f"--judge {name!r}: not in params judge.judges ({[j.name for j in spec.judges]})")
        rows, refused = read_external("pairs", [root / pairs if not pairs.is_absolute() else pairs])
        dirs = {k: root / v for k, v in c.MODEL_DIRS.items()}
        backend, run = open_judge(entry, dirs, params.base.seed, section=f"judge.judges[{spec.judges.index(entry)}]")
        template = load_template(entry.template)
    except (UserError, LookupError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    for r in refused:
        typer.echo(f"refused: {r.detail} ({r.reason})", err=True)
    result = audit(rows, backend, template, run, KeyedCache(None), n_resamples=spec.bootstrap, seed=params.base.seed)
    _show(lambda: {"judge": name, "pairs_file": str(pairs), "refused": len(refused), **result}, _audit_table, as_json)


def _audit_table(result: dict) -> Any:
    from rich.table import Table

    table = Table(
        title=f"judge {result['judge']} on {result['pairs']} labelled pairs ({result['unreadable']} unreadable)"
    )
    table.add_column("measure")
    table.add_column("value")
    table.add_column("95% CI")
    for key in ("agreement", "tie_discounted", "agreement_without_ties"):
        m = result[key]
        ci = "n/a" if m["ci"] is None else f"{m['ci'][0]:.0%}-{m['ci'][1]:.0%}"
        table.add_row(key.replace("_", " "), "n/a" if m["value"] is None else f"{m['value']:.0%} of {m['n']}", ci)
    for key, value in result["reliability"].items():
        table.add_row(
            key.replace("_", " "),
            "n/a" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value),
            "",
        )
    return table


def _stats_table(result: dict) -> Any:
    from rich.table import Table

    def num(x: Any, se: Any = None) -> str:
        return "n/a" if x is None else f"{x:.2f}" + (f" ± {se:.2f}" if se is not None else "")

    table = Table(title=f"{result['format']}: {len(result['files'])} file(s), {result['refused']} row(s) refused")
    for col in ("model", "baseline", "n", "win rate", "discrete", "length-controlled", "avg length"):
        table.add_column(col)
    for name, m in result["models"].items():
        table.add_row(
            name,
            str(m["baseline"]),
            str(m["n_total"]),
            num(m["win_rate"], m["standard_error"]),
            num(m["discrete_win_rate"]),
            num(m.get("length_controlled_winrate"), m.get("lc_standard_error")),
            "n/a" if m["avg_length"] is None else f"{m['avg_length']:.0f}",
        )
    return table


def _show(compute: Callable[[], dict], render: Callable[[dict], Any], as_json: bool) -> None:
    """Print `compute()` as JSON or through `render` (rich); its LookupError/ValueError is the user's: exit 2."""
    try:
        result = compute()
    except (LookupError, ValueError) as err:  # unknown target or id; a broken dvc.lock or jsonl line
        typer.echo(f"error: {err.args[0]}", err=True)
        raise typer.Exit(2) from err
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    from rich.console import Console

    Console().print(render(result))


if __name__ == "__main__":
    app()
