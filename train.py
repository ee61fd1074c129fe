"""Train one architecture fully: ``python train.py arch='<genotype>' dataset=... trainer.max_epochs=...``.

Without ``arch=`` it trains the search space's reference architecture (RENASNet for
``renas_cell``); ``arch_from=<search run folder>`` trains the best architecture of a search.
"""

import json
import sys

import hydra
from omegaconf import DictConfig

from renas.cli import hydra_run_dir, quiet_lightning, quote_arch_overrides, report_errors, set_threads
from renas.errors import DiskFullError, as_disk_full, stop_on_sigterm, was_terminated


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@report_errors
def main(cfg: DictConfig) -> float:
    from renas.train.final import train_architecture

    quiet_lightning()
    run_dir, resume_from = hydra_run_dir(), None
    if cfg.get("resume"):
        from renas.cli import move_logging
        from renas.train.final import prepare_train_resume

        cfg, folder, resume_from = prepare_train_resume(cfg.resume)
        run_dir = move_logging(hydra_run_dir(), folder)
        if resume_from is None:
            print(f"the training in {run_dir} is finished (result.json); nothing to resume")
            return float(json.loads((run_dir / "result.json").read_text())["val_acc"])
    set_threads(cfg.get("threads"))
    stop_on_sigterm()  # a scheduler's time limit: checkpoint, then the resume command
    try:
        result = train_architecture(cfg, run_dir, resume_from=resume_from)
    except (DiskFullError, OSError) as e:  # OSError: e.g. the checkpoint, which Lightning writes itself
        resumable = (run_dir / "checkpoints" / "last.ckpt").is_file()
        full = as_disk_full(e, run_dir, f"free space and resume with: python train.py resume={run_dir}"
                            if resumable else "free space and run it again")
        if full is None:
            raise
        raise full from None
    except KeyboardInterrupt:
        what, status = ("terminated (SIGTERM)", 143) if was_terminated() else ("interrupted", 130)
        print(f"{what}; the training is checkpointed; continue with: python train.py resume={run_dir}", file=sys.stderr)
        sys.exit(status)
    print(f"val_acc={result['val_acc']:.4f} test_acc={result['test_acc']:.4f} -> {run_dir / 'result.json'}")
    return result["val_acc"]


if __name__ == "__main__":
    sys.argv = quote_arch_overrides(sys.argv)
    main()
