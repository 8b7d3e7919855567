#!/usr/bin/python3
"""Independent PyTorch check of Loom's DDPM UNet checkpoint (pipelines/ddpm.yaml).

1. loads a `ddpm` checkpoint (LOOM_CKPT, hand-parsed safetensors) into the
   pytorch_bench DiffusionUNet (with Keras 'same' max-pool padding: (0,1)),
2. forward check: Huber(eps_pred, eps) on the 5,000 validation images + per-t table,
3. samplers written from the papers: ancestral DDPM (chapter), DDIM eta=0 (Song et al.)
   with leading / trailing / lower-start time steps, with and without x0 clipping, and
   DPM-Solver++(2M) (Lu et al. 2022), each written as an 8-column PNG grid.
Usage: LOOM_CKPT=runs/ddpm/checkpoints/train/last.safetensors ANCHORS=../shared/anchors \
       OUT=check_out /usr/bin/python3 scripts/ddpm_torch_check.py [forward] [sample] [ddpm]
"""
import gzip
import json
import math
import os
import struct
import sys
import time
import zlib

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
sys.path.insert(0, os.environ.get("ANCHORS", "../shared/anchors"))
from pytorch_bench import DiffusionUNet, variance_schedule  # noqa: E402

OUT = os.environ.get("OUT", "ddpm_torch_check")
CKPT = os.environ.get("LOOM_CKPT", "runs/ddpm/checkpoints/train/last.safetensors")
os.makedirs(OUT, exist_ok=True)
T = 4000


# ---------------------------------------------------------------- checkpoint
def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"]).copy()
    return out, header.get("__metadata__", {})


def load_into(model, W):
    used = set()

    def g(name):
        used.add("unet." + name)
        return torch.from_numpy(W["unet." + name])

    def conv(m, name, transpose=False):
        k = g(name + ".kernel")
        # Loom conv2d: (out, in, kh, kw) = torch Conv2d. Loom conv2d_transpose: (out, in, kh, kw)
        # with y[o, i*s - p + k] += x[i] w[o, i, k] (no flip) = torch ConvTranspose2d (in, out, ..)
        m.weight.data.copy_(k.transpose(0, 1) if transpose else k)
        m.bias.data.copy_(g(name + ".bias"))

    def dense(m, name):  # Loom (in, units) -> torch (out, in)
        m.weight.data.copy_(g(name + ".kernel").t())
        m.bias.data.copy_(g(name + ".bias"))

    def bn(m, name):
        m.weight.data.copy_(g(name + ".gamma"))
        m.bias.data.copy_(g(name + ".beta"))
        m.running_mean.copy_(g(name + ".moving_mean"))
        m.running_var.copy_(g(name + ".moving_variance"))
        assert m.eps == 1e-3

    def sep(m, name):
        m.depthwise.weight.data.copy_(g(name + ".depthwise_kernel"))
        m.pointwise.weight.data.copy_(g(name + ".pointwise_kernel"))
        m.pointwise.bias.data.copy_(g(name + ".bias"))

    conv(model.conv0, "conv2d_1")
    bn(model.bn0, "batch_norm_1")
    dense(model.time0, "time_16")
    sc, bnn = 1, 2
    for b, dim in zip(model.down, (32, 64, 128)):
        sep(b["sep1"], f"separable_conv2d_{sc}")
        bn(b["bn1"], f"batch_norm_{bnn}")
        sep(b["sep2"], f"separable_conv2d_{sc + 1}")
        bn(b["bn2"], f"cross_{dim}")
        conv(b["skip"], f"link_{dim}")
        dense(b["time"], f"time_{dim}")
        sc, bnn = sc + 2, bnn + 1
    ct = 1
    for b, dim in zip(model.up, (64, 32, 16)):
        conv(b["ct1"], f"conv2d_transpose_{ct}", transpose=True)
        bn(b["bn1"], f"batch_norm_{bnn}")
        conv(b["ct2"], f"conv2d_transpose_{ct + 1}", transpose=True)
        bn(b["bn2"], f"batch_norm_{bnn + 1}")
        conv(b["skip"], f"up_link_{dim}")
        dense(b["time"], f"up_time_{dim}")
        ct, bnn = ct + 2, bnn + 2
    conv(model.out, "conv2d_2")
    model_keys = {k for k in W if k.startswith("unet.")}
    assert used == model_keys, sorted(model_keys ^ used)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(W[k].size for k in model_keys
                           if not k.endswith(("moving_mean", "moving_variance"))), n_params
    return model


def keras_maxpool(z):
    # Keras/TF MaxPooling2D(3, 2, 'same') on an even size: pad 0 before, 1 after (with -inf)
    return F.max_pool2d(F.pad(z, (0, 1, 0, 1), value=float("-inf")), 3, stride=2)


def forward(model, x, t):
    """DiffusionUNet.forward with the Keras max-pool padding. t: LongTensor (N,)."""
    te = model.tenc[t]
    z = F.relu(model.bn0(model.conv0(F.pad(x, (3, 3, 3, 3)))))
    z = z + model.time0(te)[:, :, None, None]
    skip, cross = z, []
    for b in model.down:
        z = b["bn1"](b["sep1"](F.relu(z)))
        z = b["bn2"](b["sep2"](F.relu(z)))
        cross.append(z)
        z = keras_maxpool(z)
        z = z + b["skip"](skip)
        z = z + b["time"](te)[:, :, None, None]
        skip = z
    for b in model.up:
        z = b["bn1"](b["ct1"](F.relu(z)))
        z = b["bn2"](b["ct2"](F.relu(z)))
        z = F.interpolate(z, scale_factor=2, mode="nearest")
        z = z + b["skip"](F.interpolate(skip, scale_factor=2, mode="nearest"))
        z = z + b["time"](te)[:, :, None, None]
        z = torch.cat([z, cross.pop()], dim=1)
        skip = z
    return model.out(z)[:, :, 2:-2, 2:-2]


# ---------------------------------------------------------------- data / png
def load_valid():
    with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb") as f:
        d = f.read()
    X = np.frombuffer(d[16:], dtype=np.uint8).reshape(-1, 28, 28)[-5000:]
    return torch.from_numpy(X.astype(np.float32) / 255 * 2 - 1).unsqueeze(1)


def write_png(path, imgs, cols=8, scale=2, pad=2):
    """imgs (N,1,28,28) in [-1,1] -> grayscale PNG grid."""
    a = imgs.detach().cpu().numpy()[:, 0]
    a = np.clip((a + 1) / 2 * 255 + 0.5, 0, 255).astype(np.uint8)
    a = a.repeat(scale, 1).repeat(scale, 2)
    n, h, w = a.shape
    rows = (n + cols - 1) // cols
    H, Wd = rows * (h + pad) + pad, cols * (w + pad) + pad
    grid = np.full((H, Wd), 128, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = a[i]
    raw = b"".join(b"\x00" + grid[y].tobytes() for y in range(H))

    def chunk(tag, data):
        c = tag + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", Wd, H, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


# ---------------------------------------------------------------- schedule
alpha_t, abar_t, beta_t = variance_schedule(T)  # float32, index t = 0..T (chapter)
abar64 = abar_t.double()


def eps_model(model, x, t):
    with torch.no_grad():
        return forward(model, x, torch.full((x.shape[0],), int(t), dtype=torch.long))


# ---------------------------------------------------------------- forward check
def forward_check(model):
    X = load_valid()
    g = torch.Generator().manual_seed(1234)
    rows = []
    for draw in range(2):  # draw 0: the headline figure; both draws: per-t table
        t = torch.randint(1, T + 1, (len(X),), generator=g)
        eps = torch.randn(X.shape, generator=g)
        ab = abar_t[t].view(-1, 1, 1, 1)
        xn = ab.sqrt() * X + (1 - ab).sqrt() * eps
        preds = []
        with torch.no_grad():
            for i in range(0, len(X), 250):
                preds.append(forward(model, xn[i:i + 250], t[i:i + 250]))
        p = torch.cat(preds)
        if draw == 0:
            loss = F.huber_loss(p, eps, delta=1.0).item()
            print(f"val Huber (5000 images, draw 0, seed 1234): {loss:.5f}", flush=True)
            mse = F.mse_loss(p, eps).item()
            print(f"val MSE draw 0: {mse:.5f}")
        rows.append((t, p, eps))
        if draw == 1:
            print(f"val Huber draw 1: {F.huber_loss(p, eps, delta=1.0).item():.5f}")
    t = torch.cat([r[0] for r in rows])
    p = torch.cat([r[1] for r in rows])
    e = torch.cat([r[2] for r in rows])
    per_img_h = F.huber_loss(p, e, delta=1.0, reduction="none").flatten(1).mean(1)
    per_img_se = (p - e).pow(2).flatten(1).sum(1)
    npix = 28 * 28
    print("\nper-t table (both draws, 10,000 noisy images)")
    print("| t range | n | Huber | RMS(eps_pred-eps) | ||eps_pred||/||eps|| | sqrt(abar) range |")
    print("|---|---|---|---|---|---|")
    for lo, hi in [(1, 400), (400, 1000), (1000, 2000), (2000, 3000), (3000, 3900), (3900, 4001)]:
        m = (t >= lo) & (t < hi)
        n = int(m.sum())
        h = per_img_h[m].mean().item()
        rms = math.sqrt(per_img_se[m].sum().item() / (n * npix))
        ratio = (p[m].norm() / e[m].norm()).item()
        sa = (abar64[lo].sqrt().item(), abar64[hi - 1].sqrt().item())
        print(f"| {lo}-{min(hi, 4000)} | {n} | {h:.5f} | {rms:.4f} | {ratio:.4f} | {sa[0]:.4f}..{sa[1]:.2e} |")
    # finer look at the very top
    print("\nfine top range")
    for lo, hi in [(3900, 3950), (3950, 3980), (3980, 3995), (3995, 4001)]:
        m = (t >= lo) & (t < hi)
        n = int(m.sum())
        if n == 0:
            continue
        rms = math.sqrt(per_img_se[m].sum().item() / (n * npix))
        ratio = (p[m].norm() / e[m].norm()).item()
        print(f"  t {lo}-{hi - 1}: n {n} RMS {rms:.4f} ratio {ratio:.4f}")


# ---------------------------------------------------------------- samplers
def ddpm_ancestral(model, x, gen):
    for t in range(T - 1, 0, -1):
        eps = eps_model(model, x, t)
        x = (x - beta_t[t] / (1 - abar_t[t]).sqrt() * eps) / alpha_t[t].sqrt()
        if t > 1:
            x = x + beta_t[t].sqrt() * torch.randn(x.shape, generator=gen)
        if t % 500 == 0:
            print(f"    ddpm t={t} std {x.std():.3f}", flush=True)
    return x


def ddim(model, x, times, clip=True):
    """DDIM eta=0 (Song et al. 2021 eq. 12) over the decreasing list `times`, then to t=0."""
    seq = list(times) + [0]
    for t, tp in zip(seq[:-1], seq[1:]):
        a, ap = abar64[t], abar64[tp]
        eps = eps_model(model, x, t).double()
        xd = x.double()
        x0 = (xd - (1 - a).sqrt() * eps) / a.sqrt()
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (xd - a.sqrt() * x0) / (1 - a).sqrt()
        x = (ap.sqrt() * x0 + (1 - ap).sqrt() * eps).float()
    return x


def dpm_solver_pp_2m(model, x, times, clip=False):
    """DPM-Solver++(2M) (Lu et al. 2022, alg. 2), data prediction, over decreasing integer
    `times`; the final step to t=0 uses the first-order update with sigma=0 (x = x0)."""
    al = lambda t: abar64[t].sqrt()
    sg = lambda t: (1 - abar64[t]).sqrt()
    lam = lambda t: torch.log(al(t) / sg(t))
    prev_x0, prev_h = None, None
    seq = list(times)
    for i, t in enumerate(seq):
        eps = eps_model(model, x, t).double()
        xd = x.double()
        x0 = (xd - sg(t) * eps) / al(t)
        if clip:
            x0 = x0.clamp(-1, 1)
        if i == len(seq) - 1:
            x = x0.float()
            break
        tn = seq[i + 1]
        h = lam(tn) - lam(t)
        if prev_x0 is None:
            D = x0
        else:
            r = prev_h / h
            D = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * prev_x0
        xd = sg(tn) / sg(t) * xd - al(tn) * torch.expm1(-h) * D
        x = xd.float()
        prev_x0, prev_h = x0, h
    return x


def stats(x):
    a = x.clamp(-1, 1)
    sat = ((x.abs() >= 0.98).float().mean()).item()
    return f"mean {x.mean():+.3f} std {x.std():.3f} min {x.min():+.2f} max {x.max():+.2f} |x|>=0.98: {100 * sat:.1f}%"


def sample_all(model, do_ddpm):
    n = 32
    g = torch.Generator().manual_seed(7)
    x_T = torch.randn((n, 1, 28, 28), generator=g)
    lead = list(range(3961, 0, -40))  # 3961, 3921, ..., 1
    assert len(lead) == 100 and lead[-1] == 1
    trail = list(range(4000, 0, -40))  # 4000, 3960, ..., 40
    assert len(trail) == 100
    low3800 = [int(v) for v in np.round(np.linspace(3800, 1, 100))]
    low3500 = [int(v) for v in np.round(np.linspace(3500, 1, 100))]
    trail3960 = list(range(3960, 0, -40))  # 3960 .. 40 (99 steps) : trailing without t=T
    dpm_times = [int(v) for v in np.round(np.linspace(3961, 1, 21))]  # 20 model steps + final
    dpm_trail = [int(v) for v in np.round(np.linspace(4000, 1, 21))]
    runs = [
        ("b_ddim100_leading_clip", lambda x: ddim(model, x, lead, True)),
        ("c_ddim100_leading_noclip", lambda x: ddim(model, x, lead, False)),
        ("d_ddim100_from3800_clip", lambda x: ddim(model, x, low3800, True)),
        ("d_ddim100_from3800_noclip", lambda x: ddim(model, x, low3800, False)),
        ("d_ddim100_from3500_clip", lambda x: ddim(model, x, low3500, True)),
        ("e_ddim100_trailing_clip", lambda x: ddim(model, x, trail, True)),
        ("e_ddim100_trailing_noclip", lambda x: ddim(model, x, trail, False)),
        ("e_ddim99_trailing_from3960_clip", lambda x: ddim(model, x, trail3960, True)),
        ("f_dpmpp2m_20_leading_noclip", lambda x: dpm_solver_pp_2m(model, x, dpm_times, False)),
        ("f_dpmpp2m_20_leading_clip", lambda x: dpm_solver_pp_2m(model, x, dpm_times, True)),
        ("f_dpmpp2m_20_trailing_clip", lambda x: dpm_solver_pp_2m(model, x, dpm_trail, True)),
    ]
    for name, fn in runs:
        t0 = time.time()
        x = fn(x_T.clone())
        write_png(f"{OUT}/{name}.png", x)
        print(f"{name}: {stats(x)} ({time.time() - t0:.1f}s)", flush=True)
    if do_ddpm:
        t0 = time.time()
        x = ddpm_ancestral(model, x_T.clone(), torch.Generator().manual_seed(11))
        write_png(f"{OUT}/a_ddpm_ancestral.png", x)
        print(f"a_ddpm_ancestral: {stats(x)} ({time.time() - t0:.1f}s)", flush=True)


def main():
    args = set(sys.argv[1:]) or {"forward", "sample", "ddpm"}
    W, meta = load_safetensors(CKPT)
    print("checkpoint metadata:", meta)
    model = load_into(DiffusionUNet(T, 64), W).eval()
    # real images, to check the PNG writer and grid
    X = load_valid()
    write_png(f"{OUT}/real_valid.png", X[:32])
    if "forward" in args:
        forward_check(model)
    if "sample" in args:
        sample_all(model, "ddpm" in args)


if __name__ == "__main__":
    main()
