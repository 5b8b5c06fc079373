"""Named pipeline presets: the one place where the values of models, training and methods are defined.

The values were fixed before any method was tuned; methods must not change them (a method
that wants another setting is evaluated on a named preset of its own, added here).

* ``cpu``  -- the book's and CI's default: 64 x 64 images, runs on 2 CPU cores in minutes. The
  CNN classifier and the segmenter start from the ResNet-10 pre-trained on the pretraining world
  (``init="synthetic"``; generated once, checked against ``s2d_core/weights/manifest.json``) and are fine-tuned for the epochs
  chosen on held-out training images (``python -m benchmarks.pretraining schedule``); the ViT
  starts from scratch (its pre-training learnt nothing in its budget:
  ``benchmarks/records/pretraining/vit-attempt.json``).
* ``cpu-scratch`` -- the same with every network trained from scratch (the default before the
  pretraining world), with the schedules chosen for that.
* ``gpu``  -- the same world at 256 x 256 with 5x more training images, for a lent GPU (from
  scratch: no backbone of its size is pre-trained on the pretraining world yet).
* ``voc``  -- PASCAL VOC 2012 with ImageNet-initialised networks, as in the papers.
* ``tiny`` -- a handful of images for tests and smoke runs; same world as ``cpu``.

The synthetic worlds of the same names are in :mod:`s2d_core.data.presets`;
:mod:`s2d_core.presets` offers both.
"""

from __future__ import annotations

from ..cam.config import CAMConfig
from ..models.config import ModelConfig, TinySAMConfig, ViTConfig
from ..data.config import PretrainWorldConfig
from ..train.config import PretrainConfig, TrainConfig
from .config import PipelineConfig

__all__ = ["PIPELINES", "get_pipeline"]

# Models and training per preset. ``cpu``: a ResNet-10 (timm ``resnet10t``, 4.9 M parameters)
# at output stride 8 trains at about 100 images/s at 64 px on 2 cores, twice a ResNet-18;
# 8 x 8 CAM cells per 64 px image. ``gpu``: ResNet-50 at output stride 16, as in the papers.
# ViT track: ``cpu`` a 4-block, 128-wide ViT with 8 px patches (8 x 8 tokens, 1.2 M parameters,
# about 235 images/s on 2 cores); ``gpu`` ViT-S/16 from scratch; ``voc`` ViT-B/16 from ImageNet.
_VIT_ARCH = dict(patch_size=None, embed_dim=None, depth=None, num_heads=None)
# ``cpu`` schedules: from scratch 12 epochs (CNN classifier, segmenter); from the pre-trained
# backbone, the epochs chosen on held-out training images by ``python -m benchmarks.pretraining
# schedule`` (records/pretraining/schedule.json: classifier 2/4/8 epochs -> tag mAP 0.945/0.982/0.987,
# 8 chosen; segmenter 3/6 -> mIoU 0.773/0.807, 6 chosen -- the largest candidate, the curve still rising)
_CPU_TRAIN = dict(classifier_train=TrainConfig(epochs=12, pretrained_epochs=8),
                  segmenter_train=TrainConfig(epochs=12, pretrained_epochs=6))
PIPELINES: dict[str, PipelineConfig] = {
    "cpu": PipelineConfig(**_CPU_TRAIN),
    # every network from scratch, as the book's default was until the pretraining world existed
    # (same schedules: ``for_init("scratch")`` takes ``epochs``); the baseline of "what
    # pre-training changes", and what ``init: scratch`` on the ``cpu`` preset runs
    "cpu-scratch": PipelineConfig(classifier=ModelConfig(init="scratch"), segmenter=ModelConfig(init="scratch"),
                                  vit=ViTConfig(init="scratch"), **_CPU_TRAIN),
    "gpu": PipelineConfig(
        classifier=ModelConfig(backbone="resnet50", output_stride=16),
        classifier_train=TrainConfig(epochs=15, batch_size=32, lr=1e-3),
        cam=CAMConfig(scales=(1.0, 0.5, 1.5, 2.0)),
        segmenter=ModelConfig(backbone="resnet50", output_stride=16, aspp_rates=(1, 3, 6)),
        segmenter_train=TrainConfig(epochs=15, batch_size=16, lr=1e-3),
        vit=ViTConfig(backbone="vit_small_patch16_224", img_size=256, **_VIT_ARCH),
        vit_train=TrainConfig(epochs=30, batch_size=32, lr=5e-4, weight_decay=0.05),
        # the tiny SAM at 256 px (16 x 16 tokens of 16 px); the gpu suite also runs the real SAM. 4000
        # scenes: the object world is held in memory (uint8: 0.8 GB at 256 px)
        tiny_sam=TinySAMConfig(img_size=256, patch_size=16, embed_dim=256, depth=6, num_heads=8, prompt_dim=128,
                               decoder_mlp_dim=512, decoder_heads=8, n_scenes=4000, steps=10000, batch_size=64),
    ),
    # PASCAL VOC (images of ~500 x 375 px, cropped to 320 for training), ImageNet-initialised as in
    # the papers: offline, pass the weights file through overrides, e.g.
    # {"classifier": {"pretrained_file": "resnet50.safetensors"}, "segmenter": {...},
    #  "vit": {"pretrained_file": "vit_base_patch16_224.safetensors"}}
    "voc": PipelineConfig(
        classifier=ModelConfig(backbone="resnet50", output_stride=16, init="imagenet"),
        classifier_train=TrainConfig(epochs=5, batch_size=16, lr=1e-3, crop_size=320),
        cam=CAMConfig(scales=(1.0, 0.5, 1.5, 2.0)),
        segmenter=ModelConfig(backbone="resnet50", output_stride=16, init="imagenet", aspp_rates=(6, 12, 18)),
        segmenter_train=TrainConfig(epochs=10, batch_size=16, lr=1e-3, crop_size=320),
        vit=ViTConfig(backbone="vit_base_patch16_224", img_size=320, init="imagenet", **_VIT_ARCH),
        vit_train=TrainConfig(epochs=5, batch_size=16, lr=1e-4, weight_decay=0.05, crop_size=320),
    ),
    "tiny": PipelineConfig(
        # a world of 64 scenes pre-trained for one epoch: the pretraining path runs in tests in seconds
        pretraining=PretrainConfig(world=PretrainWorldConfig(n_classes=20, n_train=64, n_test=32),
                                   cnn=TrainConfig(epochs=1, batch_size=16), vit=TrainConfig(epochs=1, batch_size=16)),
        classifier_train=TrainConfig(epochs=1, batch_size=8),
        cam=CAMConfig(scales=(1.0, 0.5), flip=True),
        segmenter_train=TrainConfig(epochs=1, batch_size=8),
        vit_train=TrainConfig(epochs=2, batch_size=8, lr=1e-3, weight_decay=0.05),
        tiny_sam=TinySAMConfig(patch_size=8, embed_dim=64, depth=2, num_heads=2, prompt_dim=32, decoder_mlp_dim=64,
                               decoder_heads=2, n_scenes=200, steps=40, batch_size=8),
    ),
}


def get_pipeline(name: str) -> PipelineConfig:
    """The :class:`~s2d_core.pipeline.config.PipelineConfig` of a named preset."""
    if name not in PIPELINES:
        raise ValueError(f"unknown preset {name!r}: expected one of {sorted(PIPELINES)}")
    return PIPELINES[name]

