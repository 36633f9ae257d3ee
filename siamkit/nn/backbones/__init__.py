"""Backbones written for siamkit (AlexNet variants, atrous ResNet-50, MobileNets, small convnets)."""
