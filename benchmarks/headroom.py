"""Does a synthetic preset leave room for the book's methods?

A quick probe, run once when the generator is designed (issue: foundation), not a method:
it trains a small CNN classifier on image tags and reads its plain CAM seeds, then trains
the same backbone on dense masks (the fully supervised upper bound), and prints

    seed mIoU (best threshold) / fully supervised mIoU

The benchmark leaves room when this ratio is at or below about 0.7, and when the CAM's mass
sits mostly on the emblems and class contexts (incomplete objects, context leakage).
The real CAM pipeline of the book replaces this probe's models in a later chapter.

    python -m benchmarks.headroom --preset cpu --epochs 12
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader
from tqdm import tqdm

from s2d_core.cache import atomic_write_bytes
from s2d_core.data.dataset import SyntheticSegmentation, collate
from s2d_core.eval.segmentation import SegmentationMeter
from s2d_core.eval.seeds import sweep_thresholds
from s2d_core.presets import PRESETS
from s2d_core.viz import cam_heatmap, draw_outline


def backbone() -> torch.nn.Module:
    """ResNet-18 from scratch with output stride 8 (no striding in the last two stages)."""
    net = torchvision.models.resnet18(weights=None)
    for layer in (net.layer3, net.layer4):
        layer[0].conv1.stride = (1, 1)
        layer[0].downsample[0].stride = (1, 1)
    return torch.nn.Sequential(*list(net.children())[:-2])


class Classifier(torch.nn.Module):
    def __init__(self, n_fg: int) -> None:
        super().__init__()
        self.features = backbone()
        self.head = torch.nn.Conv2d(512, n_fg, 1, bias=False)

    def forward(self, x):
        f = self.features(x)
        return self.head(f.mean((2, 3), keepdim=True)).flatten(1), f

    def cam(self, x):
        _, f = self(x)
        cam = F.relu(self.head(f))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return cam / (cam.flatten(2).amax(2)[..., None, None] + 1e-5)


class Segmenter(torch.nn.Module):
    def __init__(self, n_cls: int) -> None:
        super().__init__()
        self.features = backbone()
        self.head = torch.nn.Conv2d(512, n_cls, 1)

    def forward(self, x):
        return F.interpolate(self.head(self.features(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


def train(model, loader, loss_fn, epochs: int, desc: str) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * len(loader))
    t0 = time.time()
    model.train()
    for ep in (bar := tqdm(range(epochs), desc=desc)):
        for b in loader:
            x = b["image"]
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = loss_fn(model, x, b, flip)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return time.time() - t0


def cam_figure(val_ds, cams, tags, class_names, n: int = 8):
    """Image + mask, and the CAM of each image's first tagged class with the object (white),
    its emblem (black) and its class context (dashed) outlined."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.6))
    for j in range(n):
        s = val_ds[j]
        k = int(np.nonzero(tags[j])[0][0])
        cls = k + 1
        axes[0, j].imshow(s["image"].permute(1, 2, 0).numpy())
        draw_outline(axes[0, j], s["mask"] == cls)
        axes[0, j].set_title(class_names[cls], fontsize=9)
        axes[1, j].imshow(cam_heatmap(s["image"], cams[j][k]))
        draw_outline(axes[1, j], s["mask"] == cls)
        draw_outline(axes[1, j], s["emblem"] == cls, colour="black")
        draw_outline(axes[1, j], (s["context"] == cls) & (s["mask"] == 0), colour="white", linestyle="--")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image, object")
    axes[1, 0].set_ylabel("CAM")
    fig.tight_layout()
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    ap.add_argument("--epochs", type=int, default=12, help="epochs for each of the two networks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/records/headroom",
                    help="folder of the JSON record (committed: the book shows it)")
    a = ap.parse_args()
    if a.epochs < 1:
        ap.error(f"--epochs must be >= 1, got {a.epochs}")
    torch.manual_seed(a.seed)
    train_ds, val_ds = SyntheticSegmentation(a.preset, "train"), SyntheticSegmentation(a.preset, "val")
    n_fg = train_ds.num_classes - 1
    loader = DataLoader(train_ds, batch_size=32, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(a.seed))
    val = DataLoader(val_ds, batch_size=64, collate_fn=collate)

    clf = Classifier(n_fg)
    t_clf = train(clf, loader, lambda m, x, b, flip: F.multilabel_soft_margin_loss(m(x)[0], b["tags"]),
                  a.epochs, "classifier")
    clf.eval()
    cams, tags, masks, acc = [], [], [], []
    with torch.no_grad():
        for b in val:
            logits, _ = clf(b["image"])
            acc.append(((logits > 0).float() == b["tags"]).all(1).float())
            cams += list(clf.cam(b["image"]).numpy()); tags += list(b["tags"].numpy()); masks += list(b["mask"].numpy())
    seeds = sweep_thresholds(cams, tags, masks, num_classes=n_fg + 1)
    # Where does the CAM's mass go? Emblem / rest of object / class context / other background.
    where = np.zeros(4)
    for cam, tag, i in zip(cams, tags, range(len(cams))):
        s = val_ds[i]
        m, e, c = s["mask"].numpy(), s["emblem"].numpy(), s["context"].numpy()
        for k in np.nonzero(tag)[0]:
            w = cam[k]
            cls = k + 1
            where += [w[e == cls].sum(), w[(m == cls) & (e != cls)].sum(),
                      w[(m == 0) & (c == cls)].sum(), w[(m != cls) & ~((m == 0) & (c == cls))].sum()]
    where /= where.sum()

    seg = Segmenter(n_fg + 1)
    t_seg = train(seg, loader, lambda m, x, b, flip: F.cross_entropy(
        m(x), torch.where(flip[:, None, None], b["mask"].flip(-1), b["mask"]), ignore_index=255),
        a.epochs, "fully supervised")
    seg.eval()
    meter = SegmentationMeter(n_fg + 1, class_names=train_ds.class_names)
    with torch.no_grad():
        for b in val:
            meter.update(seg(b["image"]).argmax(1), b["mask"])
    fs = meter.compute()
    res = {"preset": a.preset, "config": train_ds.config.to_dict(), "epochs": a.epochs, "seed": a.seed,
           "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
           "tag_exact_match_acc": float(torch.cat(acc).mean()),
           "seed_miou": seeds["best_miou"], "seed_threshold": seeds["best_threshold"],
           "seed_curve": dict(zip(map(float, seeds["thresholds"]), map(float, seeds["miou"]))),
           "fully_supervised_miou": fs["miou"], "ratio": seeds["best_miou"] / fs["miou"],
           "cam_mass": dict(zip(["emblem", "object_rest", "class_context", "other"], map(float, where))),
           "train_seconds": {"classifier": t_clf, "segmenter": t_seg}}
    print(json.dumps(res, indent=1))
    print(meter.table())
    out = Path(a.out) / f"{a.preset}-seed{a.seed}.json"
    fig = cam_figure(val_ds, cams, tags, train_ds.class_names)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    atomic_write_bytes(out.with_name(out.stem + "-cams.png"), buf.getvalue())
    atomic_write_bytes(out, json.dumps(res, indent=1).encode())
    print(f"wrote {out} and its CAM figure")


if __name__ == "__main__":
    main()
