"""Views of an 8-bit panorama stay uint8 from the sampler to the model (SYSTEM.md §2): no float
pass on the CPU, a 4x smaller view cache and host-to-GPU copy, and every consumer (the
PanoLLaVA encoder, the PanoAdapt processors, saved PNGs, the web demo) sees the same pixels as
from float views of the same levels."""

import numpy as np
import torch
from PIL import Image
from transformers import SiglipVisionConfig

from panollava.data.collate import PanoCollate
from panollava.data.images import decode_erp, load_erp
from panollava.data.sample import PanoSample
from panollava.data.tokenizer import build_word_tokenizer
from panollava.models.adapters.collate import view_arrays
from panollava.models.panollava.encoder import VisionEncoder
from panollava.views import ViewSet, build_viewset, make_layout, unit_float, unit_uint8
from panollava.views.io import save_viewset
from panollava.views.schema import ViewsConfig


def test_views_keep_the_kind_of_the_erp(sample_images):
    views = ViewsConfig(tile_size=64)
    u8 = build_viewset(decode_erp(sample_images[2], min_width=512), views).pixels
    f32 = build_viewset(load_erp(sample_images[2], min_width=512), views).pixels
    assert u8.dtype == torch.uint8 and f32.dtype == torch.float32
    assert u8.shape == f32.shape == (9, 3, 64, 64)
    assert (
        u8.float() - f32 * 255
    ).abs().max() <= 1.5 + 1e-3  # rounded levels (test_one_decode_path)
    native = build_viewset(
        decode_erp(sample_images[2], min_width=512), ViewsConfig(strategy="native")
    )
    assert native.pixels.dtype == torch.uint8 and native.pixels.shape[0] == 1


def test_unit_conversions_round_trip():
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (2, 3, 5, 7), generator=g, dtype=torch.uint8)
    assert torch.equal(unit_uint8(unit_float(u8)), u8) and unit_uint8(u8) is u8
    f = torch.tensor([-0.2, 0.0, 0.5, 1.0, 1.7])
    assert unit_uint8(f).tolist() == [0, 0, 128, 255, 255]


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 views ``(V, 3, h, w)`` in channels-last memory (as the sampler returns them) and the
    same levels as float."""
    g = torch.Generator().manual_seed(1)
    u8 = torch.randint(0, 256, (3, 32, 32, 3), generator=g, dtype=torch.uint8).permute(0, 3, 1, 2)
    return u8, unit_float(u8)


def test_batches_keep_uint8_and_mix_kinds_as_float():
    tok = build_word_tokenizer(["a red disc", "colors"])
    collate = PanoCollate(tok, num_image_tokens=4, max_text_length=32)
    u8, f32 = _pair()
    batch = collate(
        [PanoSample(u8, "colors", "a red disc"), PanoSample(u8, "colors", "a red disc")]
    )
    assert batch["pixel_values"].dtype == torch.uint8 and batch["pixel_values"].shape == (
        2,
        3,
        3,
        32,
        32,
    )
    mixed = collate(
        [PanoSample(u8, "colors", "a red disc"), PanoSample(f32, "colors", "a red disc")]
    )
    assert mixed["pixel_values"].dtype == torch.float32
    assert torch.equal(mixed["pixel_values"][0], mixed["pixel_values"][1])


def test_consumers_see_the_same_pixels_from_either_kind(tmp_path):
    u8, f32 = _pair()
    assert all(np.array_equal(a, b) for a, b in zip(view_arrays(u8), view_arrays(f32), strict=True))
    config = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                num_attention_heads=2, image_size=32, patch_size=16)  # fmt: skip
    encoder = VisionEncoder.from_config(config).eval()
    with torch.no_grad():
        assert torch.allclose(encoder(u8), encoder(f32), atol=1e-6)
    layout = make_layout(ViewsConfig(strategy="anyres_e2p", num_tiles=2, tile_size=32))
    for name, pixels in (("u8", u8), ("f32", f32)):
        save_viewset(ViewSet(pixels, layout), tmp_path / name)
    for k in range(3):
        a = np.asarray(Image.open(tmp_path / "u8" / f"view_{k:02d}.png"))
        assert np.array_equal(a, np.asarray(Image.open(tmp_path / "f32" / f"view_{k:02d}.png")))
        assert np.array_equal(a, u8[k].permute(1, 2, 0).numpy())
