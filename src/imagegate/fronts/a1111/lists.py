"""The fixed answers of A1111's informational routes, in A1111's shapes."""

from __future__ import annotations

from typing import Any

from imagegate.core.catalog import CatalogEntry

SAMPLERS: list[dict[str, Any]] = [
    {"name": name, "aliases": aliases, "options": {}}
    for name, aliases in (
        ("DPM++ 2M", ["k_dpmpp_2m"]),
        ("DPM++ SDE", ["k_dpmpp_sde"]),
        ("Euler a", ["k_euler_a", "k_euler_ancestral"]),
        ("Euler", ["k_euler"]),
        ("DDIM", ["ddim"]),
    )
]
SCHEDULERS: list[dict[str, Any]] = [
    {"name": name, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
    for name, label in (
        ("automatic", "Automatic"),
        ("karras", "Karras"),
        ("exponential", "Exponential"),
        ("normal", "Normal"),
        ("simple", "Simple"),
    )
]
UPSCALERS: list[dict[str, Any]] = [
    {"name": name, "model_name": None, "model_path": None, "model_url": None, "scale": 4}
    for name in ("None", "Lanczos", "Nearest")
]
LATENT_UPSCALE_MODES: list[dict[str, str]] = [{"name": "Latent"}]
IDLE_PROGRESS: dict[str, Any] = {
    "progress": 0.0,
    "eta_relative": 0.0,
    "state": {
        "skipped": False,
        "interrupted": False,
        "stopping_generation": False,
        "job": "",
        "job_count": 0,
        "job_timestamp": "0",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    },
    "current_image": None,
    "textinfo": None,
}


def checkpoint(entry: CatalogEntry) -> dict[str, Any]:
    """One ``/sd-models`` item: the title a client sends back is the model id."""
    return {
        "title": entry.spec.id,
        "model_name": entry.spec.id,
        "hash": None,
        "sha256": None,
        "filename": entry.spec.id,
        "config": None,
    }


def options(checkpoint_id: str) -> dict[str, Any]:
    """``GET /options``: the key's model, and the few settings clients read back."""
    return {
        "sd_model_checkpoint": checkpoint_id,
        "sd_checkpoint_hash": None,
        "sd_vae": "Automatic",
        "CLIP_stop_at_last_layers": 1,
        "samples_format": "png",
    }
