"""``truelabel autolabel``: label texts from class names or a few examples, certify them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._progress import progress_enabled
from ..exceptions import TruelabelError, ValidationError
from ._app import _FLAGS, _fail, _shown_warnings, app, console

_FLAGS.update(
    {"texts": "--text-col", "classes": "--classes", "labels": "--label-col", "encoder": "--encoder"}
)


@app.command()
def autolabel(
    data: Annotated[Path, typer.Argument(help="CSV, TSV, Parquet or JSONL file")],
    text_col: Annotated[str, typer.Option("--text-col", help="text column")],
    classes: Annotated[
        Path,
        typer.Option(
            "--classes",
            help="classes.txt (one name per line), or .yaml/.json of {name: description}",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="column with the labels of the rows a person labeled"),
    ] = None,
    max_error: Annotated[
        float | None,
        typer.Option(help="certify the labels at this error rate; the rest go to review"),
    ] = None,
    confidence: Annotated[float, typer.Option(help="probability the guarantee holds")] = 0.95,
    guarantee: Annotated[
        str,
        typer.Option(help="rate: error rate of accepted items; pool: realised error of these"),
    ] = "rate",
    id_col: Annotated[str | None, typer.Option("--id-col", help="column of item ids")] = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            help="a local ONNX or sentence-transformers model folder (default: the bundled "
            "all-MiniLM-L6-v2)",
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache",
            help="keep embeddings on disk ($TRUELABEL_CACHE_DIR or the user cache folder) so "
            "a second run encodes nothing",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier run in --out")
    ] = False,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url",
            help="label with an LLM on this OpenAI-compatible server (e.g. "
            "http://127.0.0.1:8080/v1) instead of the encoder; responses cached on disk",
        ),
    ] = None,
    llm_model: Annotated[
        str | None,
        typer.Option(
            "--llm-model", help="with --llm-url: the model name (or $TRUELABEL_LLM_MODEL)"
        ),
    ] = None,
) -> None:
    """Label the rows of DATA from class names (zero-shot) or the labeled rows (few-shot);
    with --max-error, certify what can be certified and send the rest to review."""
    from .._validation import check_column
    from ..autolabel._texts import autolabel_texts
    from ..certification import AUTOLABEL_FILES, write_autolabel
    from ..data import read_table
    from ..pipeline import check_output_dir

    try:
        with _shown_warnings():
            check_output_dir(out, files=AUTOLABEL_FILES, overwrite=overwrite, argument="--out")
            if not classes.is_file():
                raise ValidationError(
                    "--classes", f"no file {str(classes)!r}", "pass a classes.txt/.yaml/.json file"
                )
            table = read_table(data, id_col=id_col)
            check_column("--text-col", text_col, table.columns)
            if label_col is not None:
                check_column("--label-col", label_col, table.columns)
            texts = table[text_col]
            if texts.isna().any():
                row = int(texts.isna().to_numpy().nonzero()[0][0])
                raise ValidationError(
                    "--text-col", f"row {row} has no text", "fill or drop rows without text"
                )
            llm = None
            text_encoder = None
            if llm_model is not None and llm_url is None:
                raise ValidationError("--llm-model", "given without --llm-url", "add --llm-url URL")
            if llm_url is not None:
                if encoder is not None:
                    raise ValidationError(
                        "--encoder", "given with --llm-url", "pass one of the two"
                    )
                llm = {"base_url": llm_url, "model": llm_model}
            else:
                from ..encode import CachedEncoder, load_encoder

                text_encoder = load_encoder(encoder)
                if cache:
                    text_encoder = CachedEncoder(text_encoder)
            with progress_enabled(not quiet):
                result = autolabel_texts(
                    texts.astype(str).tolist(),
                    classes,
                    None if label_col is None else table[label_col].to_numpy(dtype=object),
                    max_error=max_error,
                    confidence=confidence,
                    guarantee=guarantee,
                    random_state=seed,
                    encoder=text_encoder,
                    llm=llm,
                )
            stats = result.summary.get("embedding_cache")
            if stats:
                console.print(
                    f"embeddings: {stats['hits']} of {stats['unique']} distinct texts from the "
                    f"cache, {stats['encoded']} encoded"
                )
            result.summary["data"] = str(data)
            write_autolabel(result, out, ids=None if id_col is None else table[id_col])
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: files already written are complete; none is partial")
        raise typer.Exit(130) from None
    console.print(result.message)
    console.print(f"wrote {', '.join(AUTOLABEL_FILES)} to {out}")
