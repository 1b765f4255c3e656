"""Input checks shared by every model: clear errors with expected and received shapes."""
import torch


def check_image(x, channels, image_size, what):
    """Raise ValueError unless x is (B, channels, H, W) with (H, W) == image_size."""
    expected = f"(B, {channels}, {image_size[0]}, {image_size[1]})"
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != channels \
            or tuple(x.shape[2:]) != tuple(image_size):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what}: expected shape {expected}, got {got}")


def check_cond(cond, batch_size, cond_dim, what):
    """None, or a (B, cond_dim) tensor; returns None for cond_dim == 0."""
    if cond is None:
        return None
    if not isinstance(cond, torch.Tensor) or cond.dim() != 2 or cond.shape[0] != batch_size \
            or cond.shape[1] != cond_dim:
        got = tuple(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
        raise ValueError(f"{what}: expected condition of shape ({batch_size}, {cond_dim}), got {got}")
    return cond if cond_dim > 0 else None


def normalize_raw_condition(normalizer, raw_cond):
    """Raw conditions (e.g. width/height in pixels) -> a model's normalized inputs, with the
    statistics stored with the model; a clear error when it has none."""
    if normalizer is None:
        raise ValueError("this model has no stored condition normalization; pass normalized "
                         "conditions as `cond=` instead of `raw_cond=`")
    return normalizer.normalize(raw_cond)


def reject_options(where, unknown, accepted):
    """ValueError naming every option in ``unknown`` (a dict of keyword arguments) that
    ``where`` does not use, and what it accepts; nothing when ``unknown`` is empty."""
    if unknown:
        raise ValueError(f"{where} does not use the option(s) {sorted(unknown)}; it accepts only "
                        f"{list(accepted)} (WGAN-GP-only options such as lr, restarts, loss, prior_weight "
                        f"do not apply to other models)")
