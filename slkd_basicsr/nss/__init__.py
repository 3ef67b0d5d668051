"""Natural-scene-statistics (NSS) maths shared by the BRISQUE / PIQE metrics and the feature losses.

Every function works on batched maps ``B x C x H x W`` (any float dtype) and is vectorised over batch, channels,
blocks and segments. Computation happens in float32, or in float64 when the input is float64
(:func:`device.compute_dtype`), also inside an autocast region, so half-precision feature maps are safe; the
constant matrices and tables are kept on each device they are used on. The same code serves two modes:

- *image mode* (metrics): grid search for the distribution shapes, exactly as the reference MATLAB code;
- *feature mode* (losses): differentiable shape estimates (or the moment ratios) and ``eps`` guards for flat or
  tiny maps.

Modules: ``device`` (compute dtype, autocast-free regions, per-device constants), ``filters`` (Gaussian window,
MSCN), ``fits`` (GGD / AGGD moment fits), ``neighbours`` (products of circularly shifted neighbours and their AGGD
fits), ``blocks`` (block partition and block sums), ``resize`` (MATLAB's bicubic 0.5x), ``brisque`` (BRISQUE
statistics) and ``piqe`` (PIQE block maps).
"""
