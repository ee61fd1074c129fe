"""Compare search runs from their run folders, no W&B needed.

    python -m renas.compare <run or multirun folder>... [--group-by KEY] [--out PNG] [--json]

A folder that is not itself a run (a multirun or Optuna sweep folder, or any folder above runs)
stands for the run folders inside it; a run folder holds ``summary.json`` or ``history.jsonl``.
The table has one row per run: the settings that differ between the compared runs (the keys
of their Hydra overrides, ``.hydra/overrides.yaml``, and the search space, evaluator and data
set; each shown with the value the run ran with, from ``.hydra/config.yaml`` and the group
choices in ``.hydra/hydra.yaml``; ``-`` only where a run folder has no such files and did not
override the key), the best fitness, evaluations, whether the search finished, the algorithm and
its wall seconds. Runs of different search spaces, evaluators or data sets are compared with a
warning: their fitness values may be on other scales; runs made with different versions of renas,
torch, Lightning ... (``summary.json``'s ``versions``) with another. A run that crashed (no ``summary.json``)
is read from its history and shown as unfinished.

The plot (``--out``, default ``compare.png``; with ``--json`` only when ``--out`` is given)
draws the best fitness so far per generation, one line per run. ``--group-by KEY`` (an
override key or setting, e.g. ``ga.mutation_rate``) gives runs with the same value, as they ran
with it, the same color and one legend entry. ``--json`` prints the rows as JSON instead of the table.

Examples::

    python -m renas.compare outputs/search-multirun/2026-11-28/05-44-28-123456 --group-by ga.mutation_rate
    python -m renas.compare outputs/search/2026-11-28/10-00-00-000001 outputs/search/2026-11-28/11-00-00-000002 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from renas.config import flatten
from renas.errors import RenasError, command
from renas.tracking.history import read_history

NOT_SET = "-"


def is_run(folder: Path) -> bool:
    """A search's run folder (finished, stopped or crashed) holds one of these files."""
    return (folder / "summary.json").is_file() or (folder / "history.jsonl").is_file()


def _natural(path: Path) -> list[Any]:
    """Sort key that puts job 10 after job 9."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_runs(paths: list[str]) -> list[Path]:
    """The run folders the given paths name: each path itself, or the runs below it."""
    runs: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if not path.is_dir():
            raise RenasError(f"{arg}: {'not a folder' if path.exists() else 'no such folder'}")
        if is_run(path):
            found = [path]
        else:
            found = sorted({p.parent for name in ("summary.json", "history.jsonl") for p in path.rglob(name)}, key=_natural)
            found = [p for p in found if not any(q in p.parents for q in found)]  # not inside another run
        if not found:
            raise RenasError(f"{arg} is not a run folder and holds none (a run folder has summary.json or history.jsonl)")
        runs += [p for p in found if p not in runs]
    return runs


#: override values Hydra reads as booleans and null (in any case)
_WORDS = {"true": True, "false": False, "null": None}


def _value(text: str) -> Any:
    """An override's value as a number, a boolean or null where it is one (as Hydra reads it), else the text."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_overrides(run: Path) -> dict[str, Any]:
    """``key: value`` of the run's command-line overrides (``+``/``++`` prefixes dropped)."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RenasError(f"{path} cannot be read ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(items, list):
        raise RenasError(f"{path} is not a list of overrides")
    out = {}
    for item in items:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+")] = _value(value)
    return out


def read_settings(run: Path) -> dict[str, Any]:
    """What the run ran with, by dotted key (``ga.mutation_rate``) and by config group
    (``search_space``: the option chosen): ``.hydra/config.yaml`` with its interpolations resolved
    where they can be, and ``.hydra/hydra.yaml``'s choices; empty where the files are missing."""
    # deferred: OmegaConf only when a run has its config
    from omegaconf import OmegaConf

    out: dict[str, Any] = {}
    try:
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
        try:
            plain = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # e.g. ${hydra:...}, which only a running Hydra resolves
            plain = OmegaConf.to_container(cfg, resolve=False)
        out.update({k: v for k, v in flatten(plain).items() if not isinstance(v, (dict, list))})
    except Exception:
        pass
    try:
        choices = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.runtime.choices
        out.update({str(k): str(v) for k, v in choices.items() if not str(k).startswith("hydra/") and v is not None})
    except Exception:
        pass
    return out


def read_run(run: Path) -> dict[str, Any]:
    """One row: overrides, best fitness and arch, evaluations, finished, algorithm, seconds,
    and the best-so-far fitness per generation. A run without ``summary.json`` (crashed or
    still running) is read from its history and counts as unfinished."""
    summary: dict[str, Any] = {}
    if (run / "summary.json").is_file():
        try:
            summary = json.loads((run / "summary.json").read_text())
        except ValueError:
            raise RenasError(f"{run / 'summary.json'} is not valid JSON") from None
        if not isinstance(summary, dict):
            raise RenasError(f"{run / 'summary.json'} is not a search's summary (a JSON object)")
    if summary:
        best, evaluations = summary.get("best"), summary.get("evaluations")
        if not (best is None or isinstance(best, dict) and isinstance(best.get("fitness"), (int, float))
                and isinstance(best.get("arch"), str)) or not (evaluations is None or type(evaluations) is int):
            raise RenasError(f"{run / 'summary.json'} is not a search's summary (its best or evaluations are not "
                             f"what a search writes)")
    else:
        history = read_history(run / "history.jsonl")
        ok = [r for r in history if r.get("status") == "ok"]
        best = max(ok, key=lambda r: r["fitness"]) if ok else None
        evaluations = len(history)
    generations = read_history(run / "generations.jsonl")
    settings = read_settings(run)
    for key in COMPARABLE:  # from the summary where the run folder has no Hydra files
        if key not in settings and isinstance(summary.get(key), str):
            settings[key] = summary[key]
    return {
        "run": str(run),
        "overrides": read_overrides(run),
        "settings": settings,
        "best_fitness": best["fitness"] if best else None,
        "best_arch": best["arch"] if best else None,
        "evaluations": evaluations,
        "finished": bool(summary.get("finished", False)),
        "algorithm": summary.get("algorithm") or settings.get("algorithm.name"),
        "seconds": summary.get("seconds"),
        "versions": summary.get("versions") if isinstance(summary.get("versions"), dict) else None,
        "curve": [(g["generation"], g["fitness/best_so_far"]) for g in generations
                  if g.get("fitness/best_so_far") is not None],
    }


#: what makes two runs' fitness values incomparable when it differs (a column whenever it does)
COMPARABLE = ("search_space", "evaluator", "dataset")
#: what changes how a run is shown, logged or saved, not what it finds: no column
NOT_SETTINGS = ("progress", "snapshot", "logger")


def setting(row: dict[str, Any], key: str) -> Any:
    """The value ``key`` had in a run: what it ran with (its config, its group choices), else its
    override, else ``-`` (a run folder without Hydra's files, where the key was not overridden)."""
    if key in row["settings"]:
        return row["settings"][key]
    return row["overrides"].get(key, NOT_SET)


def differing_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Override keys (and :data:`COMPARABLE` groups) whose value, as the runs ran with it, is not
    the same in every run (in first-seen order); ``algorithm`` has a column of its own."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in dict.fromkeys([*COMPARABLE, *row["overrides"]]) if k not in keys and k != "algorithm"
                 and k.split(".")[0] not in NOT_SETTINGS]
    def differs(key: str) -> bool:
        values = {repr(setting(r, key)) for r in rows}
        if key in COMPARABLE:  # a run folder that does not say: not a difference
            values.discard(repr(NOT_SET))
        return len(values) > 1

    return [k for k in keys if differs(k)]


def short_names(runs: list[Path]) -> tuple[Path, list[str]]:
    """The runs' common parent folder and each run's path relative to it."""
    absolute = [r.resolve() for r in runs]
    common = Path(os.path.commonpath([r.parent for r in absolute]))
    return common, [str(r.relative_to(common)) for r in absolute]


def _fmt(value: Any) -> str:
    if value is None:
        return NOT_SET
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _numbers_first(text: str) -> tuple[int, Any]:
    value = _value(text)
    return (0, value) if isinstance(value, (int, float)) else (1, text)


def format_table(rows: list[dict[str, Any]], names: list[str], keys: list[str]) -> str:
    """Aligned text table, one line per run."""
    header = ["run", *keys, "best", "evals", "finished", "algorithm", "seconds"]
    lines = [header]
    for row, name in zip(rows, names):
        best = f"{row['best_fitness']:.4f}" if row["best_fitness"] is not None else NOT_SET
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else NOT_SET
        lines.append([name, *(_fmt(setting(row, k)) for k in keys), best, _fmt(row["evaluations"]),
                      _fmt(row["finished"]), _fmt(row["algorithm"]), seconds])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {"best", "evals", "seconds"}
    return "\n".join(
        "  ".join(cell.rjust(w) if header[i] in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
        for line in lines
    )


def plot_curves(rows: list[dict[str, Any]], names: list[str], keys: list[str], out: Path, group_by: str | None) -> None:
    """Best fitness so far per generation, one line per run (dashed: unfinished); runs sharing
    ``group_by``'s value share a color and a legend entry."""
    # deferred: matplotlib (~0.6 s) only for the plot
    import matplotlib

    matplotlib.use("Agg")
    # deferred: pyplot after matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = list(range(len(rows)))
    if group_by:
        values = sorted({_fmt(setting(r, group_by)) for r in rows}, key=_numbers_first)
        cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20")
        colors = {v: cmap(i % cmap.N) for i, v in enumerate(values)}
        order.sort(key=lambda i: values.index(_fmt(setting(rows[i], group_by))))  # legend in value order
    labelled: set[str] = set()
    for i in order:
        row = rows[i]
        if not row["curve"]:
            continue
        xs, ys = zip(*row["curve"])
        style = {"marker": "o", "ms": 3, "ls": "-" if row["finished"] else "--"}
        if group_by:
            value = _fmt(setting(row, group_by))
            label = (f"{group_by}={value}" if value != NOT_SET else f"{group_by} not set") if value not in labelled else None
            labelled.add(value)
            ax.plot(xs, ys, color=colors[value], label=label, **style)
        else:
            detail = " ".join(f"{k}={_fmt(setting(row, k))}" for k in keys) if len(keys) <= 2 else ""
            ax.plot(xs, ys, label=f"{names[i]} {detail}".strip(), **style)  # more keys: see the table
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness so far")
    ax.set_title("best fitness so far per generation" + (f" by {group_by}" if group_by else ""))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    except OSError as e:
        raise RenasError(f"--out {out}: cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)


def check_out(out: str) -> None:
    """``--out`` names a file of a format the plot can be written in (matplotlib's, by the file
    name's ending), before any run is read."""
    # deferred: matplotlib (~0.6 s) only for the plot
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(out)
    if path.is_dir():
        raise RenasError(f"--out {out} is a folder; give a file in it, e.g. --out {path / 'compare.png'}")
    formats = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise RenasError(f"--out {out}: the plot is written as one of {', '.join(sorted(formats))}; give a file "
                         f"name with one of those endings")


def compare(paths: list[str], group_by: str | None = None, out: str | None = "compare.png", as_json: bool = False) -> None:
    """Print the table (or JSON rows) of the runs ``paths`` name and write the plot to ``out``."""
    if out:
        check_out(out)
    runs = find_runs(paths)
    rows = [read_run(r) for r in runs]
    if group_by:
        known = sorted({k for r in rows for k in r["overrides"]})
        if group_by not in known and not any(group_by in r["settings"] for r in rows):
            raise RenasError(f"--group-by {group_by}: not an override or setting of these runs (overrides: "
                             f"{', '.join(known) or 'none'})")
    keys = differing_keys(rows)
    common, names = short_names(runs)
    mixed = [f"{k} ({', '.join(sorted({str(setting(r, k)) for r in rows} - {NOT_SET}))})" for k in COMPARABLE if k in keys]
    if mixed:
        print(f"warning: these runs differ in {'; '.join(mixed)}: their fitness values may not be comparable",
              file=sys.stderr)
    recorded = [r["versions"] for r in rows if r["versions"]]  # (older runs record none)
    versions = [f"{name} {', '.join(sorted({str(v.get(name)) for v in recorded}))}"
                for name in dict.fromkeys(n for v in recorded for n in v) if len({v.get(name) for v in recorded}) > 1]
    if versions:
        print(f"warning: these runs ran with different versions ({'; '.join(versions)}): the same settings and seed "
              f"may give other results", file=sys.stderr)
    if as_json:
        print(json.dumps([{**{k: v for k, v in r.items() if k not in ("curve", "settings")},
                           "overrides": dict(r["overrides"]),  # all of them, as given (the table: those that differ)
                           "settings": {k: setting(r, k) for k in keys}} for r in rows], indent=2))
    else:
        print(f"{len(rows)} runs in {common}")
        print(format_table(rows, names, keys))
    if out:
        plot_curves(rows, names, keys, Path(out), group_by)
        print(f"plot: {out}", file=sys.stderr if as_json else sys.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=command("compare", "python -m renas.compare"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="run folders, or folders holding run folders (multirun sweeps)")
    parser.add_argument("--group-by", metavar="KEY", help="override key or setting whose value colors the plot's lines, e.g. ga.mutation_rate")
    parser.add_argument("--out", metavar="PNG", help="where to write the plot (default: compare.png; none with --json unless given)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else (None if args.json else "compare.png")
    try:
        compare(args.folders, group_by=args.group_by, out=out, as_json=args.json)
    except RenasError as e:
        if os.environ.get("RENAS_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except BrokenPipeError:  # the reader stopped early (`... --json | head`): what it read is all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        sys.exit(141)  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    main()
