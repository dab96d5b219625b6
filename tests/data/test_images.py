"""Panorama decoding: formats, modes, reduced-scale JPEG decoding and every documented refusal."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from panollava.data.images import ImageLoadError, decode_erp, load_erp
from panollava.data.schema import ImageConfig


def _gradient(w=256, h=128):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    return np.concatenate(
        [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), np.full((h, w, 1), 80.0)], -1
    ).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_formats_load_as_float_rgb(tmp_path, fmt):
    path = tmp_path / f"pano.{fmt.lower()}"
    Image.fromarray(_gradient()).save(path, fmt, quality=95)
    erp = load_erp(path)
    assert erp.shape == (3, 128, 256) and erp.dtype == torch.float32
    assert erp.min() >= 0.0 and erp.max() <= 1.0
    ref = torch.from_numpy(_gradient()).permute(2, 0, 1).float() / 255
    assert (erp - ref).abs().mean() < 0.02


def test_modes_grayscale_palette_rgba(tmp_path):
    gray = Image.fromarray(_gradient()[..., 0])
    gray.save(tmp_path / "l.png")
    erp = load_erp(tmp_path / "l.png")
    assert torch.equal(erp[0], erp[1]) and torch.equal(erp[1], erp[2])
    Image.fromarray(_gradient()).convert("P").save(tmp_path / "p.png")
    assert load_erp(tmp_path / "p.png").shape == (3, 128, 256)
    rgba = np.dstack([_gradient(), np.full((128, 256), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    erp = load_erp(tmp_path / "a.png")  # composited on black: half alpha halves the colour
    assert erp[2].mean() == pytest.approx(80 / 255 * 128 / 255, abs=2e-3)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    arr = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (128, 1))
    Image.fromarray(arr).save(tmp_path / "g16.png")
    erp = load_erp(tmp_path / "g16.png")
    assert erp[0, 0, 0] == 0.0 and erp[0, 0, -1] == pytest.approx(1.0)
    assert erp[0, 0, 128] == pytest.approx(arr[0, 128] / 65535, abs=1e-6)


def test_cmyk_jpeg_converts_to_the_right_colour(tmp_path):
    rgb = np.zeros((128, 256, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    erp = load_erp(tmp_path / "cmyk.jpg")
    assert erp[0].mean() == pytest.approx(200 / 255, abs=0.03)
    assert erp[1].mean() < 0.05 and erp[2].mean() < 0.05


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_gradient(128, 256))  # stored portrait, rotated to landscape by EXIF
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    erp = load_erp(tmp_path / "rot.jpg")
    assert erp.shape == (3, 128, 256)


def test_reduced_scale_jpeg_decoding(tmp_path):
    big = Image.fromarray(_gradient(2048, 1024))
    big.save(tmp_path / "big.jpg", quality=95)
    small = load_erp(tmp_path / "big.jpg", min_width=500)
    assert small.shape == (3, 256, 512)  # 1/4 scale: the smallest DCT scale >= 500 px wide
    full = load_erp(tmp_path / "big.jpg")
    ref = torch.nn.functional.interpolate(full[None], size=(256, 512), mode="area")[0]
    assert (small - ref).abs().mean() < 0.01
    assert (
        load_erp(tmp_path / "big.jpg", cfg=ImageConfig(draft_decode=False), min_width=500).shape[-1]
        == 2048
    )


def test_decode_erp_keeps_the_decoded_depth(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "x.png")
    u8 = decode_erp(tmp_path / "x.png")
    assert u8.dtype == torch.uint8
    assert torch.equal(u8.float() / 255, load_erp(tmp_path / "x.png"))
    arr = np.tile(np.linspace(0, 65535, 256, dtype=np.uint16), (128, 1))
    Image.fromarray(arr).save(tmp_path / "g16.png")  # deeper than 8 bits: float, not quantized
    deep = decode_erp(tmp_path / "g16.png")
    assert deep.dtype == torch.float32 and deep[0, 0, 1] == pytest.approx(257 / 65535, abs=1e-6)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b"this is not an image at all"), "not an image"),
        (lambda p: Image.new("RGB", (1, 1)).save(p, "PNG"), "smaller than"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, make, match):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageLoadError, match=match) as info:
        load_erp(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_gradient(512, 256)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ImageLoadError, match="corrupt or truncated"):
        load_erp(path)


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("RGB", (400, 200)).save(path)
    with pytest.raises(ImageLoadError, match="max_pixels"):
        load_erp(path, cfg=ImageConfig(max_pixels=10_000))


def test_aspect_policies(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((100, 300, 3), 200, np.uint8)).save(path)  # 3:1
    with pytest.raises(ImageLoadError, match="not a 2:1"):
        load_erp(path, cfg=ImageConfig(aspect_policy="error"))
    with pytest.warns(UserWarning, match="resampled to 300x150"):
        assert load_erp(path, cfg=ImageConfig(aspect_policy="resample")).shape == (3, 150, 300)
    with pytest.warns(UserWarning, match="padded"):
        padded = load_erp(path, cfg=ImageConfig(aspect_policy="pad"))
    assert padded.shape == (3, 150, 300)
    assert padded[:, :25].max() == 0 and padded[:, 25:125].min() > 0.7  # black poles, content kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Image.fromarray(_gradient(6006, 3003)).save(tmp_path / "odd.jpg")
        assert load_erp(tmp_path / "odd.jpg").shape == (3, 3003, 6006)  # exact 2:1, no warning


def test_real_panoramas_load(sample_images):
    for p in sample_images:
        erp = load_erp(p, min_width=805)
        assert erp.shape[1] * 2 in (erp.shape[2], erp.shape[2] + 1, erp.shape[2] - 1)
        assert erp.shape[2] >= 805


# --- the torchvision / nvJPEG decoder (run here on CPU; the same code runs on CUDA) -------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_torch_decoder_applies_exif_orientation_like_pillow(tmp_path, orientation):
    from panollava.data.images import decode_jpeg_torch

    rng = np.random.default_rng(orientation)
    shown = np.kron((rng.random((20, 40, 3)) * 255).astype(np.uint8), np.ones((4, 4, 1), np.uint8))
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = Image.fromarray(shown)
    stored = stored.transpose(undo[orientation]) if orientation in undo else stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "o.jpg", exif=exif, quality=98)
    got = decode_jpeg_torch(tmp_path / "o.jpg", device="cpu")
    assert torch.equal(got, load_erp(tmp_path / "o.jpg"))  # same libjpeg decode, same pixels


def test_torch_decoder_matches_draft_decoding_on_real_panoramas(sample_images):
    from panollava.data.images import decode_jpeg_torch

    for path in sample_images[2:5]:  # sRGB-tagged (img_02, Adobe RGB, decodes on CPU only)
        cpu = load_erp(path, min_width=805)
        got = decode_jpeg_torch(path, min_width=805, device="cpu")
        assert got.shape == cpu.shape
        assert (got - cpu).abs().mean() * 255 < 4.0  # area average vs DCT scaling: ~1-3 levels


def test_torch_decoder_refusals(tmp_path):
    from panollava.data.images import NotTorchDecodable, decode_jpeg_torch

    Image.fromarray(_gradient()).save(tmp_path / "p.png")
    with pytest.raises(NotTorchDecodable, match="PNG"):
        decode_jpeg_torch(tmp_path / "p.png", device="cpu")
    Image.fromarray(_gradient(w=300, h=100)).save(tmp_path / "wide.jpg")
    with pytest.raises(NotTorchDecodable, match="not 2:1"):
        decode_jpeg_torch(tmp_path / "wide.jpg", device="cpu")
    Image.fromarray(_gradient()).save(tmp_path / "t.jpg", quality=95)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "t.jpg").read_bytes()[:600])
    with pytest.raises(ImageLoadError, match=r"cut\.jpg: corrupt"):
        decode_jpeg_torch(tmp_path / "cut.jpg", device="cpu")


@pytest.mark.gpu
def test_cuda_decode_matches_cpu_torch_decode(sample_images):
    from panollava.data.images import decode_jpeg_torch

    for path in sample_images:
        gpu = load_erp(path, min_width=805, device="cuda")
        assert gpu.is_cuda
        if path.name == "img_02.jpg":  # Adobe RGB: colour-managed on CPU, then moved
            assert torch.equal(gpu.cpu(), load_erp(path, min_width=805))
            continue
        cpu = decode_jpeg_torch(path, min_width=805, device="cpu")
        assert (gpu.cpu() - cpu).abs().mean() * 255 < 1.0  # nvJPEG vs libjpeg IDCT rounding


# --- colour management: embedded ICC profiles -> sRGB ----------------------------------------


def _saturation(x: torch.Tensor) -> float:
    """Mean HSV saturation of ``(3, H, W)`` in [0, 1]."""
    top, low = x.max(0).values, x.min(0).values
    return float(((top - low) / top.clamp_min(1e-6)).mean())


def _managed_reference(path, size) -> torch.Tensor:
    """Pillow's own decode at ``size`` (DCT scaling), converted to sRGB with LittleCMS."""
    import io

    from PIL import ImageCms

    img = Image.open(path)
    img.draft("RGB", size)
    icc = img.info["icc_profile"]
    srgb = ImageCms.profileToProfile(
        img, io.BytesIO(icc), ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    return torch.from_numpy(np.asarray(srgb).copy()).permute(2, 0, 1).float() / 255


def test_embedded_icc_profile_is_converted_to_srgb(sample_images):
    path = sample_images[1]  # img_02.jpg: Adobe RGB (1998), 4096x2048
    ref = _managed_reference(path, (1024, 512))
    ours = load_erp(path, min_width=1024)  # the same 1/4 DCT scale
    raw = Image.open(path)
    raw.draft("RGB", (1024, 512))
    unmanaged = torch.from_numpy(np.asarray(raw.convert("RGB")).copy()).permute(2, 0, 1) / 255
    assert (unmanaged - ref).abs().mean() * 255 > 2.0  # the profile matters on this image
    assert (ours - ref).abs().mean() * 255 < 0.5
    assert abs(_saturation(ours) - _saturation(ref)) < 0.005  # 0.185 unmanaged vs ~0.25
    assert torch.equal(decode_erp(path, min_width=1024), (ours * 255).round().byte())


def test_srgb_profiles_leave_pixels_alone(sample_images):
    path = sample_images[2]  # img_03.jpg: tagged sRGB IEC61966-2.1
    raw = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy()).permute(2, 0, 1)
    assert torch.equal(decode_erp(path), raw)


def test_torch_decoder_routes_icc_tagged_jpegs_to_the_cpu(sample_images):
    from panollava.data.images import NotTorchDecodable, decode_jpeg_torch

    with pytest.raises(NotTorchDecodable, match=r"Adobe RGB.*colour-managed on CPU"):
        decode_jpeg_torch(sample_images[1], device="cpu")
