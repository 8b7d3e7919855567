#!/usr/bin/python3
"""Reads runs/<pipeline>/metrics.jsonl of full runs and prints the results table (markdown):
the final validation loss of each training stage against the published figure.

usage: scripts/results_table.py [RUNS_DIR]
"""
import json, os, sys

# pipeline -> [(stage, published validation loss or None, note)]
PUBLISHED = {
    "stacked_ae": [("train", 0.0132, "20 epochs")],
    "tied_ae": [("train", 0.0133, "10 epochs")],
    "denoising_dropout_ae": [("train", 0.0166, "10 epochs")],
    "denoising_gaussian_ae": [("train", None, "10 epochs, not published")],
    "sparse_l1_ae": [("train", 0.0111, "10 epochs, MSE + L1 penalty")],
    "sparse_kl_ae": [("train", 0.0099, "10 epochs, MSE + KL penalty")],
    "hashing_ae": [("train", 0.0345, "10 epochs")],
    "conv_ae": [("train", 0.0121, "10 epochs")],
    "recurrent_ae": [("train", 0.0104, "10 epochs")],
    "vae": [("train", 0.0311, "25 epochs, MSE + latent loss")],
    "greedy_ae": [("first", 0.0089, "first autoencoder, 10 epochs"), ("second", 0.0516, "second, on codings"),
                  ("fine_tune", 0.0133, "stacked, fine-tuned 5 epochs")],
}


def main():
    runs = sys.argv[1] if len(sys.argv) > 1 else "runs"
    print("| pipeline | stage | epochs | published val loss | measured val loss | vs published |")
    print("|---|---|---|---|---|---|")
    for name, stages in PUBLISHED.items():
        path = os.path.join(runs, name, "metrics.jsonl")
        if not os.path.exists(path):
            continue
        lines = [json.loads(l) for l in open(path) if l.strip()]
        for stage, published, note in stages:
            valid = [l for l in lines if l["task"] == stage and l["split"] == "valid"]
            if not valid:
                continue
            last = valid[-1]
            ratio = "" if published is None else f"{(last['loss'] / published - 1) * 100:+.1f}%"
            pub = "—" if published is None else f"{published:.4f}"
            print(f"| `{name}` | {stage} | {last['epoch']} | {pub} | {last['loss']:.4f} | {ratio} |")


if __name__ == "__main__":
    main()
