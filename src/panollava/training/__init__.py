"""One training engine (PyTorch Lightning) shared by PanoLLaVA and PanoAdapt."""
