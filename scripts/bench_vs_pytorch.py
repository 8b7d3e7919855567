#!/usr/bin/python3
"""Side-by-side training throughput: `loom bench` against the PyTorch anchor
(../shared/anchors/pytorch_bench.py) on the same model, batch and machine, alternating the two
several rounds. Prints a markdown table of medians and their ratio, and writes JSON.

usage: scripts/bench_vs_pytorch.py [--rounds 3] [--models stacked_ae,conv_ae,vae,recurrent_ae,gan,dcgan,ddpm_unet,ddpm_sampling]
       [--openblas DIR] [--anchors ../shared/anchors] [--out docs/bench.json] [--bf16]

--bf16 also runs `loom bench --precision bf16` in every round (Loom fp32, Loom bf16, PyTorch fp32
alternating) and reports bf16 over Loom's fp32 and over PyTorch's.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

PIPELINES = {"stacked_ae": "pipelines/stacked_ae.yaml", "conv_ae": "pipelines/conv_ae.yaml",
             "vae": "pipelines/vae.yaml", "recurrent_ae": "pipelines/recurrent_ae.yaml",
             "gan": "pipelines/gan.yaml", "dcgan": "pipelines/dcgan.yaml",
             "ddpm_unet": "pipelines/ddpm.yaml", "ddpm_sampling": "pipelines/ddpm.yaml"}


def loom_bench(pipeline, steps, sample=False, precision="fp32"):
    out = subprocess.run(["build/bin/loom", "bench", pipeline, "--json", "--threads", "2",
                          "--windows", "5", "--steps", str(steps), "--warmup", "30",
                          "--precision", precision] +
                         (["--sample"] if sample else []),
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return j["denoising_steps_per_s"] if sample else j["images_per_s"]


def torch_bench(model, anchors, openblas):
    if model == "ddpm_sampling":
        return torch_section("sampling", "ddpm_unet", anchors, openblas)["steps_per_s_median"]
    return torch_section("throughput", model, anchors, openblas)["img_per_s_median"]


def torch_section(section, model, anchors, openblas):
    env = dict(os.environ)
    if openblas:
        env["LD_LIBRARY_PATH"] = openblas
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "pt.json")
        subprocess.run(["/usr/bin/python3", os.path.join(anchors, "pytorch_bench.py"), "--sections",
                        section, "--models", model, "--out", out], check=True, env=env,
                       capture_output=True, text=True)
        with open(out) as f:
            j = json.load(f)
            return j["ddpm_sampling"] if section == "sampling" else j["throughput"][model]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="stacked_ae,conv_ae,vae,recurrent_ae")
    ap.add_argument("--openblas", default=os.path.expanduser(
        "~/.cache/openblas/usr/lib/x86_64-linux-gnu/openblas-openmp"))
    ap.add_argument("--anchors", default="../shared/anchors")
    ap.add_argument("--out", default="")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    # One GAN step is a discriminator and a generator update on a batch of real images.
    steps = {"stacked_ae": 400, "vae": 200, "conv_ae": 60, "recurrent_ae": 20, "gan": 200,
             "dcgan": 10, "ddpm_unet": 10, "ddpm_sampling": 20}
    results = {}
    for model in a.models.split(","):
        lo, pt, lb = [], [], []
        for r in range(a.rounds):
            lo.append(loom_bench(PIPELINES[model], steps.get(model, 100),
                                 sample=model == "ddpm_sampling"))
            if a.bf16:
                lb.append(loom_bench(PIPELINES[model], steps.get(model, 100),
                                     sample=model == "ddpm_sampling", precision="bf16"))
            pt.append(torch_bench(model, a.anchors, a.openblas))
            unit = "denoising steps/s" if model == "ddpm_sampling" else "img/s"
            print(f"{model} round {r + 1}: loom {lo[-1]:.1f} {unit}, " +
                  (f"loom bf16 {lb[-1]:.1f} {unit}, " if a.bf16 else "") +
                  f"pytorch {pt[-1]:.1f} {unit}", file=sys.stderr, flush=True)
        results[model] = dict(loom=lo, pytorch=pt, loom_median=statistics.median(lo),
                              pytorch_median=statistics.median(pt),
                              ratio=statistics.median(lo) / statistics.median(pt))
        if a.bf16:
            results[model].update(loom_bf16=lb, loom_bf16_median=statistics.median(lb),
                                  bf16_over_fp32=statistics.median(lb) / statistics.median(lo),
                                  bf16_over_pytorch=statistics.median(lb) / statistics.median(pt))
    print("| model | Loom (median) | PyTorch (median) | ratio |")
    print("|---|---|---|---|")
    for m, r in results.items():
        unit = " steps/s" if m == "ddpm_sampling" else " img/s"
        print(f"| {m} | {r['loom_median']:,.1f}{unit} | {r['pytorch_median']:,.1f}{unit} | "
              f"{r['ratio']:.2f}x |")
    if a.bf16:
        print("\n| model | Loom bf16 (median) | over Loom fp32 | over PyTorch fp32 |")
        print("|---|---|---|---|")
        for m, r in results.items():
            print(f"| {m} | {r['loom_bf16_median']:,.1f} | {r['bf16_over_fp32']:.2f}x | "
                  f"{r['bf16_over_pytorch']:.2f}x |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
