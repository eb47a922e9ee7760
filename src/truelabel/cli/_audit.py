"""``truelabel audit``: a data file, a project folder (``truelabel init``) or annotations.

Its own module so the forms it dispatches to (`_project`, `_consensus`) and the shared
helpers in `_app` are imported one way: this module -> them, never back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .._progress import progress_enabled
from ..exceptions import TruelabelError, ValidationError
from ._app import EncoderOption, _fail, _load_npy, _print_summary, _shown_warnings, app, console
from ._backend import (
    AddressOption,
    BackendOption,
    ChunkSizeOption,
    backend_setting,
    resolve_backend,
)
from ._consensus import audit_annotations_command
from ._project import audit_project_command, is_project


@app.command()
def audit(
    data: Annotated[
        Path,
        typer.Argument(
            help="CSV, TSV, Parquet or JSONL file, or a project folder (truelabel init)"
        ),
    ],
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="column with the given labels (not for a project)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="output directory (not for a project)")
    ] = None,
    text_col: Annotated[str | None, typer.Option("--text-col", help="text column")] = None,
    feature_cols: Annotated[
        list[str] | None,
        typer.Option("--feature-cols", help="feature columns (names or a pattern like 'f_*')"),
    ] = None,
    pred_probs: Annotated[
        Path | None, typer.Option("--pred-probs", help=".npy of out-of-sample probabilities")
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="precomputed vectors, row i = row i of DATA: emb.npy or data.parquet:COLUMN",
        ),
    ] = None,
    encoder: EncoderOption = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="keep sentence embeddings on disk ($TRUELABEL_CACHE_DIR or the user cache "
            "folder) so a second run encodes nothing",
        ),
    ] = True,
    id_col: Annotated[str | None, typer.Option("--id-col", help="column of item ids")] = None,
    n_neighbors: Annotated[int, typer.Option(help="neighbours in the kNN graph")] = 10,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier run in --out")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="a project's database URL (default: its own)"),
    ] = None,
    review_url: Annotated[
        str | None,
        typer.Option(
            "--review-url",
            help="with a project: the address of truelabel serve; the report links each "
            "item to its review page there (default http://127.0.0.1:8000)",
        ),
    ] = None,
    annotations: Annotated[
        bool,
        typer.Option(
            "--annotations",
            help="DATA is a long table of answers (item, annotator, label): flag doubtful "
            "consensus and annotators who disagree with it",
        ),
    ] = False,
    annotator_col: Annotated[
        str | None,
        typer.Option("--annotator-col", help="with --annotations: the annotator column"),
    ] = None,
    duplicates: Annotated[
        str,
        typer.Option("--duplicates", help="with --annotations: raise, first, last or all"),
    ] = "raise",
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="with --annotations: dawid-skene (default), majority, mace, one-coin "
            "(with --items: the base of model-assisted consensus, default one-coin)",
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="with --annotations: a table of the items with their texts (--text-col): "
            "consensus assisted by a text classifier",
        ),
    ] = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    chunk_size: ChunkSizeOption = None,
    judge_url: Annotated[
        str | None,
        typer.Option(
            "--judge-url",
            help="an OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1): an LLM re-checks "
            "the most doubtful labels; issues.csv gets judge_score = its p(given label)",
        ),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            "--judge-model", help="with --judge-url: the model name (or $TRUELABEL_LLM_MODEL)"
        ),
    ] = None,
    judge_top: Annotated[
        int, typer.Option("--judge-top", help="with --judge-url: how many labels to re-check")
    ] = 50,
    judge_method: Annotated[
        str,
        typer.Option(
            "--judge-method",
            help="with --judge-url: classify (p(label) from the classification prompt), verify "
            "(a calibrated yes/no question; needs logprobs) or both (their mean)",
        ),
    ] = "classify",
) -> None:
    """Audit the labels of DATA and write issues.csv, summary.json and report.html.

    With a project folder: audit its items' current labels, store the run, its issues and
    scores, fill the review queue; the report goes to PROJECT/runs/<run id>/.
    With --annotations: DATA holds many annotators' answers (--id-col: item column,
    --label-col: answer column); also writes annotators.csv.
    """
    from .._features import read_features

    try:
        run_on = resolve_backend(backend, address, chunk_size)
    except TruelabelError as err:
        _fail(err)
    if annotations:
        unused = (
            ("--feature-cols", feature_cols),
            ("--pred-probs", pred_probs),
            ("--features", features),
            ("--encoder", encoder if items is None else None),  # it encodes --items' texts
            ("--review-url", review_url),
            ("--judge-url", judge_url),
        )
        audit_annotations_command(
            data, out=out, id_col=id_col, annotator_col=annotator_col, label_col=label_col,
            duplicates=duplicates, method=method, seed=seed, overwrite=overwrite,
            unused=[flag for flag, value in unused if value], items=items, text_col=text_col,
            encoder=encoder, cache=cache, quiet=quiet, run_on=run_on,
        )  # fmt: skip
        return
    if items is not None or method is not None:
        flag = "--items" if items is not None else "--method"
        _fail(ValidationError(flag, "is only used with --annotations", "add --annotations"))

    if is_project(data):
        project_only = (
            ("--label-col", label_col),
            ("--out", out),
            ("--text-col", text_col),
            ("--feature-cols", feature_cols),
            ("--id-col", id_col),
            ("--judge-url", judge_url),
        )
        given = [flag for flag, value in project_only if value]
        if given:
            _fail(
                ValidationError(
                    given[0],
                    f"given with the project folder {str(data)!r}",
                    "a project knows its columns and writes into PROJECT/runs/; drop the option",
                )
            )
        audit_project_command(
            data,
            pred_probs=pred_probs,
            features=features,
            encoder=encoder,
            cache=cache,
            n_neighbors=n_neighbors,
            seed=seed,
            quiet=quiet,
            database_url=database_url,
            review_url=review_url,
            run_on=run_on,
            backend_line=(
                backend_setting(backend, address, chunk_size)
                if backend != "local" or chunk_size is not None
                else None
            ),
        )
        return
    if review_url is not None:
        _fail(
            ValidationError(
                "--review-url",
                f"given with the data file {str(data)!r}",
                "links go to a project's review app: audit a project folder (truelabel init)",
            )
        )
    if label_col is None or out is None:
        missing = "--label-col" if label_col is None else "--out"
        _fail(
            ValidationError(
                missing,
                f"missing (DATA {str(data)!r} is a file, not a project folder)",
                "pass --label-col COL and --out DIR",
            )
        )
    from ..data import Dataset
    from ..pipeline import audit_dataset, check_output_dir, write_audit

    try:
        with _shown_warnings():
            if n_neighbors < 1:
                raise ValidationError("--n-neighbors", f"got {n_neighbors}", "pass an int >= 1")
            if judge_url is not None and text_col is None:
                raise ValidationError(
                    "--judge-url",
                    "given without --text-col",
                    "the LLM judges texts: add --text-col",
                )
            if judge_top < 1:
                raise ValidationError("--judge-top", f"got {judge_top}", "pass an int >= 1")
            if judge_method not in ("classify", "verify", "both"):
                raise ValidationError(
                    "--judge-method", f"got {judge_method!r}", "pass classify, verify or both"
                )
            check_output_dir(out, overwrite=overwrite, argument="--out")
            cols = feature_cols
            if cols and len(cols) == 1 and "," in cols[0]:
                cols = [c.strip() for c in cols[0].split(",")]
            dataset = Dataset.from_file(
                data, label_col=label_col, text_col=text_col, feature_cols=cols, id_col=id_col
            )
            probs = None if pred_probs is None else _load_npy(pred_probs, "--pred-probs")
            vectors = None
            if features is not None:
                vectors = read_features(features, n_items=dataset.n_items, argument="--features")
            inputs = (
                ("text", text_col),
                ("feature columns", cols),
                ("features", features),
                ("pred_probs", pred_probs),
            )
            settings = {
                "data": str(data),
                "label_col": label_col,
                "inputs": ", ".join(n for n, v in inputs if v),
                "seed": str(seed),
            }
            if backend != "local" or chunk_size is not None:
                settings["backend"] = backend_setting(backend, address, chunk_size)
            with progress_enabled(not quiet):
                result = audit_dataset(
                    dataset,
                    pred_probs=probs,
                    features=vectors,
                    encoder=encoder,
                    n_neighbors=n_neighbors,
                    random_state=seed,
                    cache_embeddings=cache,
                    **run_on,
                )
                if judge_url is not None:
                    settings["judge"] = (
                        f"{judge_model or '$TRUELABEL_LLM_MODEL'} at {judge_url}, "
                        f"method {judge_method}"
                    )
                    _judge(result, dataset, judge_url, judge_model, judge_top, judge_method)
                paths = write_audit(
                    result, out, texts=dataset.texts, settings=settings, overwrite=overwrite
                )
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: files already written are complete; none is partial")
        raise typer.Exit(130) from None
    _print_summary(result.summary, out, paths)


def _judge(result: Any, dataset: Any, url: str, model: str | None, top: int, method: str) -> None:
    """Re-check the ``top`` most doubtful labels with an LLM; adds ``judge_score``."""
    from ..llm import LLMJudge, recheck_issues

    judge = LLMJudge([str(c) for c in dataset.classes], base_url=url, model=model, method=method)
    scores = recheck_issues(result.issues, dataset.texts, judge, top=top)
    result.issues["judge_score"] = scores
    asked = int(scores.notna().sum())
    doubted = int((scores < 0.5).sum())
    console.print(
        f"LLM judge re-checked {asked} of the most doubtful labels: it gives {doubted} of them "
        "less than 0.5 (judge_score in issues.csv; a small model is a weak judge: "
        "weigh it, don't trust it)"
    )
