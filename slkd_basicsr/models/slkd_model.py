"""SLKDModel: dual-teacher Simultaneous Learning Knowledge Distillation as a BasicSR model type."""
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

from slkd_basicsr.archs.networks import network_on_meta
from slkd_basicsr.complexity import complexity_table
from slkd_basicsr.data.built_datasets import shared_dataset
from slkd_basicsr.dist_util import gather_per_rank
from slkd_basicsr.errors import CheckpointError, UserError
from . import teacher_checks
from .distill_schedule import distill_weight
from .distill_taps import check_taps, probe_input, probe_tap_channels, tap_networks
from .feature_taps import FeatureTaps
from .grad_shares import gradient_shares
from .precision import amp_dtype, autocast, grad_scaler
from .scm import ScaleConversionModule
from .slkd_options import raise_first, teacher_problems
from .teacher_checks import TeacherCheckError
from .teacher_view import TeacherView


class NonFiniteLossError(UserError, RuntimeError):
    """Too many optimiser steps in a row had a non-finite loss or gradient."""


def optimizer_groups(train_opt: Dict[str, Any], student: nn.Module,
                     scm: Optional[nn.Module]) -> Tuple[List[Dict[str, Any]], List[str]]:
    """The param groups of ``train.optim_g``: the student's trainable parameters and, with an SCM, the SCM's as a
    second group with an optional lr of its own (``train.lr_scm``); and the options key of each group's lr."""
    groups = [{'params': [p for p in student.parameters() if p.requires_grad]}]
    lr_keys = ['train.optim_g.lr']
    if scm is not None:
        group = {'params': list(scm.parameters())}
        if train_opt.get('lr_scm') is not None:
            group['lr'] = train_opt['lr_scm']
        groups.append(group)
        lr_keys.append('train.lr_scm' if 'lr' in group else 'train.lr_scm (unset: train.optim_g.lr)')
    return groups, lr_keys


def optimizer_groups_on_meta(opt: Dict[str, Any]) -> Optional[Tuple[List[Dict[str, Any]], List[str]]]:
    """:func:`optimizer_groups` of the training ``opt`` describes, its student and SCM built on the ``meta`` device
    (shapes only; the SCM's channels from :func:`~.distill_taps.check_taps`), so that a resume can be checked
    against them before anything is made; None when a network cannot be built or probed there."""
    student = network_on_meta(opt['network_g'])
    if student is None:
        return None
    train_opt = opt['train']
    scm = None
    if train_opt.get('nc_opt') or train_opt.get('et_opt'):  # the SCM exists with a feature term, as in the build
        channels = check_taps(opt)
        if channels is None:
            return None
        with torch.device('meta'):
            scm = ScaleConversionModule(*channels, (opt.get('distill') or {}).get('scm_resize_mode', 'bilinear'))
    return optimizer_groups(train_opt, student, scm)


@MODEL_REGISTRY.register()
class SLKDModel(SRModel):
    """SLKD on top of BasicSR's SRModel (feeding, EMA, optimisers, schedulers, validation, saving are SRModel's).

    ``network_g`` is the student. ``network_teacher_a`` sees the degraded input ``lq``; its encoder
    features (through the BRISQUE extractor, ``nc_opt``) and its output (``kd_opt``) guide the student.
    ``network_teacher_b`` sees the clean ``gt``; its decoder features (through the PIQE extractor,
    ``et_opt``) guide the student's decoder. Teachers are frozen, run under ``torch.no_grad`` and are
    never saved. A Scale Conversion Module maps student taps to teacher channels and sizes; it
    trains with the student and is saved as ``net_scm_<iter>.pth`` and in the training state.

    Options read here (besides SRModel's; their keys and the checks of taps and teachers are in
    :mod:`.slkd_options`): ``network_teacher_a`` / ``network_teacher_b``;
    ``path.pretrain_network_teacher_a/_b``, ``param_key_teacher_a/_b`` (default 'params'),
    ``strict_load_teacher_a/_b`` (default True); ``train.kd_opt``, ``train.nc_opt``, ``train.et_opt``
    (each optional); ``train.lr_scm`` (default: the student's lr); ``train.use_grad_clip`` and
    ``train.grad_clip_norm`` (default 0.01); ``train.max_nonfinite_steps`` (default 10); ``distill``:
    ``encoder_taps``, ``decoder_taps`` (default: the archs' ``default_taps``, see :func:`~.distill_taps.resolve_taps`),
    ``scm_resize_mode``, ``probe_size``, ``probe_channels``, ``log_complexity``, ``check_teachers`` (default
    True) and ``min_teacher_b_psnr`` (default 30, see :mod:`.teacher_checks`), ``log_grad_shares`` (default False:
    at ``logger.print_freq``, ``share_<term>`` = the term's gradient norm on the student over ``l_pix``'s),
    ``anneal_iters`` (default None: constant weights; else the distillation terms fade out by a half cosine over
    that many iterations, see :mod:`.distill_schedule`); what the teachers cost: ``teacher_batch`` (default None:
    the whole batch; an integer n: the teachers and every distillation term see the first n samples, a fraction
    in (0, 1): that share of the batch, at least one sample; the pixel term always sees the whole batch),
    ``teacher_crop`` (default None: the whole patch; n: the teachers and the distillation terms see a centred
    n x n crop of it, a fraction in (0, 1): that share of each side; the student's output and features are cut to
    the same region, see :mod:`.teacher_view`),
    ``every`` (default 1; k: the distillation terms, at k times their weight, and the teachers run every k-th
    iteration only), ``teacher_amp`` (default ``train.amp``: the teachers' autocast,
    ``bf16`` | ``fp16`` | false); ``train.amp`` (``bf16`` | ``fp16`` | false, default false:
    the student, the SCM and the teachers run under ``torch.autocast``, fp16 with a ``GradScaler`` whose state is
    saved and resumed; see :mod:`.precision`) and ``val.amp`` (default: ``train.amp``) for validation.

    A step makes no host-device copy and, with an optimiser that can skip a step on the device (``fused: true``
    in ``train.optim_g`` for Adam / AdamW), no host-device synchronisation: the non-finite decision is made on
    the device (all-reduced over ranks) and read back, with the loss logs, only at ``logger.print_freq``. Other
    optimisers read the decision back every step (one synchronisation).

    Everything the distillation adds (teachers, SCM, probes, teacher checks) is built with the global random
    state forked, and the feature losses draw their channels from ``channel_rng``, a generator of their own on
    the model's device, seeded from ``manual_seed`` and the rank and kept in the training state: an SLKD run and a
    student-alone run with the same seed see the same data, degradations and student initialisation.
    """

    def init_training_settings(self):
        devices = [self.device] if self.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices):
            self._init_distillation()
        self.use_grad_clip = self.opt['train'].get('use_grad_clip', False)
        self.grad_clip_norm = self.opt['train'].get('grad_clip_norm', 0.01)
        self.max_nonfinite_steps = self.opt['train'].get('max_nonfinite_steps', 10)
        # device counters, read back only when the decision is already on the host or at print_freq
        self.nonfinite_in_row, self.nonfinite_longest, self.nonfinite_total = (
            torch.zeros((), dtype=torch.int64, device=self.device) for _ in range(3))
        self.nonfinite_reported = 0
        self.step_losses: Dict[str, torch.Tensor] = {}
        self.step_weight: Optional[float] = None
        super().init_training_settings()

    def _init_distillation(self) -> None:
        """Losses, frozen teachers, taps, SCM, channel generator; teacher checks on the first validation set."""
        train_opt = self.opt['train']
        distill_opt = self.opt.get('distill') or {}
        logger = get_root_logger()
        self.amp = amp_dtype(train_opt.get('amp'), 'train.amp', self.device)
        self.teacher_amp = amp_dtype(distill_opt.get('teacher_amp', train_opt.get('amp')), 'distill.teacher_amp',
                                     self.device)
        self.scaler = grad_scaler(self.device, self.amp)

        self.cri_kd = build_loss(train_opt['kd_opt']).to(self.device) if train_opt.get('kd_opt') else None
        self.cri_nc = build_loss(train_opt['nc_opt']).to(self.device) if train_opt.get('nc_opt') else None
        self.cri_et = build_loss(train_opt['et_opt']).to(self.device) if train_opt.get('et_opt') else None
        raise_first(teacher_problems(self.opt))  # the options check's rule, for a model built without that check
        self.teacher_a = self._build_teacher('a') if (self.cri_kd or self.cri_nc) else None
        self.teacher_b = self._build_teacher('b') if self.cri_et else None
        if self.teacher_a is None and self.teacher_b is None:
            logger.info('SLKD: kd_opt, nc_opt and et_opt are all off; training the student alone (as SRModel).')

        student = self.get_bare_model(self.net_g)
        # the same taps and probe as the check before the experiment folder is made (distill_taps.check_taps)
        taps = tap_networks(distill_opt, student, self.teacher_a if self.cri_nc else None,
                            self.teacher_b if self.cri_et else None)
        for note in taps.notes:
            logger.info(note)
        self.student_taps, self.teacher_a_taps, self.teacher_b_taps = taps.student, taps.teacher_a, taps.teacher_b
        self.num_encoder_taps = taps.num_encoder

        self.teacher_batch = distill_opt.get('teacher_batch')
        self.teacher_crop = distill_opt.get('teacher_crop')
        self.net_scm = None
        if taps.teacher_a is not None or taps.teacher_b is not None:
            student_ch, teacher_ch = probe_tap_channels(student, self.teacher_a, self.teacher_b, taps,
                                                        probe_input(self.opt, student, self.device), self.teacher_crop)
            scm = ScaleConversionModule(student_ch, teacher_ch, distill_opt.get('scm_resize_mode', 'bilinear'))
            self.net_scm = self.model_to_device(scm)
            self.net_scm.train()
        if distill_opt.get('log_complexity', True):
            self._log_complexity()

        self.channel_rng = torch.Generator(device=self.device).manual_seed(self._channel_seed())
        for cri in (self.cri_nc, self.cri_et):
            if cri is not None and hasattr(cri, 'generator'):
                cri.generator = self.channel_rng
        self.log_grad_shares = distill_opt.get('log_grad_shares', False)
        self.anneal_iters = distill_opt.get('anneal_iters')
        self.distill_every = distill_opt.get('every') or 1
        no_teachers = self.teacher_a is None and self.teacher_b is None
        self.teachers_checked = no_teachers or not distill_opt.get('check_teachers', True)
        if not no_teachers:
            self._measure_teachers_on_val_sets()

    def _channel_seed(self) -> int:
        """A seed per (manual_seed, rank), independent of the global random state."""
        seed = self.opt.get('manual_seed')
        entropy = [0 if seed is None else int(seed), self.opt.get('rank', 0)]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)

    def _teacher_as_in_training(self, teacher: nn.Module, img: torch.Tensor) -> torch.Tensor:
        """``teacher`` on ``img`` as it runs in training (device, ``distill.teacher_amp``), its output as float32;
        the features its taps recorded are dropped."""
        with autocast(self.device, self.teacher_amp):
            out = teacher(img.to(self.device)).float()
        self._clear_taps()
        return out

    def _measure_teachers_on_val_sets(self) -> None:
        """Teacher A's scores on each validation set by ``val.metrics`` (on rank 0, which logs them once per run,
        so the student's gap is visible) and, unless it is off, the teacher check on the first set (on every rank):
        one pass of the teachers over each set, which the run checks built once
        (:mod:`slkd_basicsr.data.built_datasets`)."""
        scored = self.teacher_a is not None and self.opt.get('rank', 0) == 0
        metrics = (self.opt.get('val') or {}).get('metrics') if scored else None
        check = not self.teachers_checked  # on the first set; without clean images there, on the first batch
        for dataset_opt in teacher_checks.val_dataset_options(self.opt):
            if not (metrics or check):
                return
            scores = teacher_checks.measure_on_set(shared_dataset(dataset_opt), self.teacher_a, self.teacher_b,
                                                   metrics, self._teacher_as_in_training, check)
            if 'metrics' in scores:
                values = ', '.join(f'{name}: {value:.4f}' for name, value in scores['metrics'].items())
                get_root_logger().info(f"Teacher A on {dataset_opt['name']}: {values}")
            if 'teacher_a' in scores or 'teacher_b' in scores:
                self._judge_teachers(scores, dataset_opt['name'])
            check = False

    def _check_teachers(self, lq: torch.Tensor, gt: torch.Tensor, source: str) -> None:
        """The teacher check on one batch (lq, gt: B x C x H x W in [0, 1])."""
        self._judge_teachers(teacher_checks.measure_teachers(self.teacher_a, self.teacher_b, lq, gt,
                                                             self._teacher_as_in_training), source)

    def _judge_teachers(self, scores: Dict[str, Any], source: str) -> None:
        """Log each teacher's check PSNR on ``source``; raise :class:`TeacherCheckError` if one is useless."""
        self.teachers_checked = True
        self.teacher_scores = scores
        if self.opt.get('rank', 0) == 0:
            for line in teacher_checks.report_lines(scores, source):
                get_root_logger().info(line)
        distill_opt = self.opt.get('distill') or {}
        min_b = distill_opt.get('min_teacher_b_psnr', teacher_checks.DEFAULT_MIN_TEACHER_B_PSNR)
        found = teacher_checks.problems(scores, min_b)
        if found:
            raise TeacherCheckError('SLKD teacher check failed (set distill.check_teachers: false to skip it, e.g. '
                                    'for random-weight smoke tests):\n  ' + '\n  '.join(found))

    def _build_teacher(self, which: str) -> nn.Module:
        """Build ``network_teacher_<which>``, load its checkpoint, freeze it."""
        key = f'network_teacher_{which}'
        path_key = f'pretrain_network_teacher_{which}'
        load_path = self.opt['path'][path_key]  # both set: teacher_problems
        teacher = build_network(self.opt[key]).to(self.device)
        try:
            self.load_network(teacher, load_path, self.opt['path'].get(f'strict_load_teacher_{which}', True),
                              self.opt['path'].get(f'param_key_teacher_{which}', 'params'))
        except CheckpointError as err:  # the same message with the teacher's role, chained to what caused it
            raise CheckpointError(f'teacher {which.upper()} (path.{path_key}): {err}') from err.__cause__
        teacher.eval()
        teacher.requires_grad_(False)
        return teacher

    def _log_complexity(self) -> None:
        if self.opt.get('rank', 0) != 0:
            return
        shape = tuple(probe_input(self.opt, self.get_bare_model(self.net_g), self.device).shape[1:])
        rows = [(name, net) for name, net in (('teacher_a', self.teacher_a), ('teacher_b', self.teacher_b))
                if net is not None] + [('student', self.get_bare_model(self.net_g))]
        get_root_logger().info(complexity_table(rows, shape))
        self._clear_taps()

    def _clear_taps(self) -> None:
        """Drop recorded features (and the graphs they hold) once they are used."""
        for taps in (self.student_taps, self.teacher_a_taps, self.teacher_b_taps):
            if taps is not None:
                taps.clear()

    def setup_optimizers(self):
        """Student parameters and, as a second group with an optional own lr, the SCM's."""
        train_opt = self.opt['train']
        optim_opt = dict(train_opt['optim_g'])
        optim_type = optim_opt.pop('type')
        groups, _ = optimizer_groups(train_opt, self.net_g, self.net_scm)
        self.optimizer_g = self.get_optimizer(optim_type, groups, **optim_opt)
        self.optimizers.append(self.optimizer_g)

    def lr_option_keys(self) -> List[List[str]]:
        """The options key of each param group's learning rate, per optimiser (``train.optim_g``'s student and SCM
        groups), which resume names when the options file changes them."""
        return [optimizer_groups(self.opt['train'], self.net_g, self.net_scm)[1]]

    def feed_data(self, data: Dict[str, torch.Tensor]) -> None:
        """SRModel's feed_data without blocking: from pinned memory (``pin_memory: true``) the copies overlap."""
        self.lq = data['lq'].to(self.device, non_blocking=True)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device, non_blocking=True)

    def optimize_parameters(self, current_iter):
        if not self.teachers_checked:  # no validation set with clean images: the first training batch
            self._check_teachers(self.lq, self.gt, 'the first training batch')
        self.optimizer_g.zero_grad(set_to_none=True)
        losses = self.compute_losses(current_iter)
        l_total = sum(value for _, value in losses)
        shares = {}
        if self.log_grad_shares and current_iter % self.opt['logger']['print_freq'] == 0:
            # on the scaled losses, so that fp16 gradients do not underflow; the ratios do not depend on the scale
            shares = gradient_shares([(name, self.scaler.scale(value)) for name, value in losses],
                                     [p for p in self.net_g.parameters() if p.requires_grad])
        self.scaler.scale(l_total).backward()
        self._clear_taps()
        self._step_if_finite(l_total, current_iter)

        step_losses = OrderedDict((name, value.detach()) for name, value in losses)
        step_losses.update(shares)
        step_losses['l_total'] = l_total.detach()
        self.step_losses = step_losses
        # the same on every rank: logged as it is, not made a device tensor (a host-device copy) to be reduced
        self.step_weight = self.distillation_weight(current_iter) if self.anneal_iters is not None else None
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def compute_losses(self, current_iter: int) -> List[Tuple[str, torch.Tensor]]:
        """Forward the teachers and the student on (``self.lq``, ``self.gt``) and return the weighted terms.

        The teachers see the first ``distill.teacher_batch`` samples (all by default), cropped to
        ``distill.teacher_crop`` (not by default), and the distillation terms compare the same samples and region of
        the student's output and features; the pixel term takes the whole batch. Teachers whose output no term reads
        stop at their last tap.

        Returns:
            (name, 0-dim float32 loss on the model's device) pairs, each attached to the student's graph:
            ``l_pix`` (and ``l_percep`` / ``l_style``), then ``l_kd``, ``l_nc``, ``l_et`` where enabled and the
            distillation weight of ``current_iter`` (:meth:`distillation_weight`) is above 0.
        """
        weight = self.distillation_weight(current_iter)
        distill = weight > 0  # a term at weight 0 costs nothing: its teacher and extractor are not run
        view = TeacherView.of_batch(self.lq, self.teacher_batch, self.teacher_crop)
        output_a = None
        if distill:
            # Teachers first: their transient activations are freed before the student's graph exists, so the peak
            # memory is not the sum of both. no_grad rather than inference_mode: losses such as MSE save their
            # target for backward, which inference tensors do not allow.
            with torch.no_grad(), autocast(self.device, self.teacher_amp):
                output_a = self._run_teacher(self.teacher_a, self.teacher_a_taps, view(self.lq), self.cri_kd)
                self._run_teacher(self.teacher_b, self.teacher_b_taps, view(self.gt), False)
        with autocast(self.device, self.amp):
            self.output = self.net_g(self.lq)
            converted, teacher_feats = self._converted_features(view) if distill else ([], [])
        # the losses compute in float32 (the NSS statistics upcast their inputs themselves)
        output = self.output.float()
        losses = []
        if self.cri_pix:
            losses.append(('l_pix', self.cri_pix(output, self.gt)))
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, self.gt)
            losses += [(name, value) for name, value in (('l_percep', l_percep), ('l_style', l_style))
                       if value is not None]
        if self.cri_kd and distill:
            losses.append(('l_kd', weight * self.cri_kd(view(output), output_a)))
        n = self.num_encoder_taps
        if self.cri_nc and distill:
            losses.append(('l_nc', weight * self.cri_nc(converted[:n], teacher_feats[:n])))
        if self.cri_et and distill:
            losses.append(('l_et', weight * self.cri_et(converted[n:], teacher_feats[n:])))
        return losses

    def distillation_weight(self, current_iter: int) -> float:
        """The factor of the distillation terms at ``current_iter``: the annealing schedule's
        (``distill.anneal_iters``), and with ``distill.every: k`` k times it every k-th iteration and 0 between,
        so that the expected gradient per iteration is unchanged."""
        weight = distill_weight(current_iter, self.anneal_iters)
        if self.distill_every > 1:
            weight = weight * self.distill_every if current_iter % self.distill_every == 0 else 0.0
        return weight

    @staticmethod
    def _run_teacher(teacher: Optional[nn.Module], taps: Optional[FeatureTaps], x: torch.Tensor,
                     need_output: bool) -> Optional[torch.Tensor]:
        """The teacher's output on ``x`` when ``need_output``; else only as far as its last tap (None)."""
        if teacher is None:
            return None
        if need_output or taps is None:
            return teacher(x)
        taps.run_to_last_tap(teacher, x)
        return None

    def _converted_features(self, view: TeacherView) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """The ``view`` (the teachers' samples and region) of the student's tapped features mapped by the SCM to the
        teachers' shapes, and the teachers' features (encoder taps first, then decoder taps), each k x C x H x W;
        empty lists without feature terms."""
        if self.net_scm is None:
            return [], []
        teacher_feats = []
        for taps in (self.teacher_a_taps, self.teacher_b_taps):
            teacher_feats += taps.features() if taps is not None else []
        student_feats = [view(f) for f in self.student_taps.features()]
        converted = self.net_scm(student_feats, [f.shape[-2:] for f in teacher_feats])
        return converted, teacher_feats

    def get_current_log(self) -> Dict[str, float]:
        """The latest step's losses, averaged over ranks, and the count of skipped steps.

        BasicSR's trainer asks only at ``logger.print_freq``, on every rank, so the reduction (a collective) and
        the read-back happen there, not at every step.
        """
        self.log_dict = self.reduce_loss_dict(OrderedDict((k, v.float()) for k, v in self.step_losses.items()))
        if self.step_weight is not None:
            self.log_dict['distill_weight'] = self.step_weight
        self.log_dict['nonfinite_steps'] = int(self.nonfinite_total)
        return self.log_dict

    def _step_if_finite(self, l_total: torch.Tensor, current_iter: int) -> None:
        """Clip (if asked), then step unless the loss or the gradient norm is not finite on some rank.

        The decision is a device tensor, all-reduced so that every rank skips together. Under fp16 the scaler
        skips steps whose scaled gradients overflow on its own, and only a non-finite loss counts as a bad step
        (an overflow is the scaler's business, e.g. at start-up). A bad run of ``max_nonfinite_steps`` raises
        :class:`NonFiniteLossError`, checked at once when the host already knows of a skipped step (an optimiser
        that cannot skip on the device), else at print_freq; a good step reads nothing back for it.
        """
        optimizer = self.optimizer_g
        self.scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        bad = ~torch.isfinite(l_total.detach())
        if self.use_grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)
        else:  # the norm alone: scaling every gradient by 1 would be wasted work
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else \
                torch.zeros((), device=self.device)
        if not self.scaler.is_enabled():
            bad = bad | ~torch.isfinite(grad_norm)
        bad = bad.to(torch.int64)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)

        skipped_on_host = False  # a bad step the host already knows of: checked at once
        if self.scaler.is_enabled():
            self.scaler.step(optimizer)
            self.scaler.update()
        elif getattr(optimizer, '_step_supports_amp_scaling', False):
            # fused Adam/AdamW skip the update (and undo their step count) where found_inf is set, on the device
            optimizer.grad_scale, optimizer.found_inf = None, bad.float()
            optimizer.step()
            del optimizer.grad_scale, optimizer.found_inf
        else:
            skipped_on_host = bool(bad)  # the one synchronisation of a step with an optimiser that cannot skip
            if not skipped_on_host:      # on the device
                optimizer.step()
        self.nonfinite_in_row = (self.nonfinite_in_row + bad) * bad
        self.nonfinite_longest = torch.maximum(self.nonfinite_longest, self.nonfinite_in_row)
        self.nonfinite_total = self.nonfinite_total + bad
        if skipped_on_host or current_iter % self.opt['logger']['print_freq'] == 0:
            self._check_nonfinite()

    def _check_nonfinite(self) -> None:
        """Warn about the bad steps skipped since the last check; raise after too many in a row."""
        total = int(self.nonfinite_total)
        if total == self.nonfinite_reported:
            return
        in_row, longest = int(self.nonfinite_in_row), int(self.nonfinite_longest)
        get_root_logger().warning(f'Non-finite loss or gradient: {total - self.nonfinite_reported} step(s) skipped '
                                  f'({in_row} in a row now, {total} in all).')
        self.nonfinite_reported = total
        if longest >= self.max_nonfinite_steps:
            raise NonFiniteLossError(
                f'{longest} steps in a row had a non-finite loss or gradient '
                f'(train.max_nonfinite_steps = {self.max_nonfinite_steps}). The last saved checkpoint is intact: '
                'lower the learning rate (train.optim_g.lr) in the options file, enable train.use_grad_clip, or '
                'check the data, then resume with --auto_resume, which applies the options file\'s learning rates '
                'and scheduler settings.')

    def extra_training_state(self) -> Dict[str, Any]:
        """What the training state holds beyond BasicSR's entries (the saving ``save_training_state`` asks for it on
        every rank): ``channel_rng``, every rank's channel generator state (CPU byte tensors, in rank order: a
        collective every rank enters), with an SCM its weights (``scm``) and, under fp16, the gradient scaler's
        state (``grad_scaler``); :meth:`resume_training` reads them back.

        The SCM has no ``network_*`` option, so BasicSR's resume cannot reload it from ``models/``.
        """
        extra = {'channel_rng': gather_per_rank(self.channel_rng.get_state().cpu())}
        if self.net_scm is not None:
            extra['scm'] = self.get_bare_model(self.net_scm).state_dict()
        if self.scaler.is_enabled():
            extra['grad_scaler'] = self.scaler.state_dict()
        return extra

    def resume_training(self, resume_state: Dict[str, Any]) -> None:
        super().resume_training(resume_state)
        if self.net_scm is not None:
            if 'scm' not in resume_state:
                raise KeyError('the resume state has no SCM weights (it was not written by SLKDModel with the same '
                               'distillation losses); start a new run or enable the same losses.')
            self.get_bare_model(self.net_scm).load_state_dict(resume_state['scm'])
        states = resume_state.get('channel_rng')
        if states is not None and len(states) == self.opt.get('world_size', 1):  # else, as the other random states,
            # the generator keeps its seed (pipeline.resume.own_rng_state); its state is a CPU byte tensor whatever
            # the generator's device
            self.channel_rng.set_state(states[self.opt.get('rank', 0)].cpu())
        if self.scaler.is_enabled() and 'grad_scaler' in resume_state:
            self.scaler.load_state_dict(resume_state['grad_scaler'])

    def save(self, epoch, current_iter):
        super().save(epoch, current_iter)
        if self.net_scm is not None:
            self.save_network(self.net_scm, 'net_scm', current_iter)

    def test(self):
        """SRModel's test under ``val.amp`` (default ``train.amp``); the student's taps are dropped afterwards, so
        that a full-size validation image's features do not stay alive into the next training step."""
        opt = self.opt.get('val') or {}
        dtype = amp_dtype(opt.get('amp', (self.opt.get('train') or {}).get('amp')), 'val.amp', self.device)
        with autocast(self.device, dtype):
            super().test()
        self.output = self.output.float()
        if self.is_train:
            self._clear_taps()
