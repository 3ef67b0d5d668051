"""Which modules of the student and the teachers are tapped, and the probe forward that checks that they fit.

:class:`~slkd_basicsr.models.slkd_model.SLKDModel` taps its networks when it is built (:func:`tap_networks`) and
runs every network once on a probe input (:func:`probe_tap_channels`) to read the tap channels its Scale
Conversion Module needs. :func:`check_taps` does the same on networks built on the ``meta`` device (shapes only,
no weights, no computation) when the options are parsed, so that a tap that does not exist, taps that do not
pair, teachers and student of different channels or a ``distill.teacher_crop`` the teachers would pad stop a run
before its experiment folder is made, with the message the model's build would give.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from slkd_basicsr.archs.networks import input_channels, network_on_meta
from slkd_basicsr.errors import UserError
from .feature_taps import FeatureTaps, TapError
from .slkd_options import raise_first, taps_problems
from .teacher_view import TeacherView


def parse_taps(taps: Sequence[Any], key: str) -> List[Tuple[str, str]]:
    """Normalise ``distill.<key>`` into (student module, teacher module) name pairs.

    Each entry is a module name used on both networks, or a two-element [student, teacher] list.

    Raises:
        ValueError: the first problem the options check reports of these taps
            (:func:`~.slkd_options.taps_problems`; its loss is on, as the taps are read).
    """
    raise_first(taps_problems(taps, f'distill.{key}', used=True))
    return [(entry, entry) if isinstance(entry, str) else (entry[0], entry[1]) for entry in taps]


def default_taps(net: nn.Module, kind: str, role: str) -> List[str]:
    """The ``kind`` ('encoder' or 'decoder') entry of the bare network's ``default_taps``.

    Read on the built network, not its class: an arch whose depth is a constructor argument (NAFNet) computes its
    defaults from its levels, one of a fixed depth (Restormer, DRSformer, Uformer) declares a class attribute.

    Raises:
        TapError: naming ``role`` and the arch when it declares none.
    """
    taps = (getattr(net, 'default_taps', None) or {}).get(kind)
    if not taps:
        raise TapError(f'{role} {type(net).__name__} declares no default {kind} taps: list them in '
                       f'distill.{kind}_taps (module names of the {kind}, or [student, teacher] pairs).')
    return list(taps)


def resolve_taps(distill_opt: Dict[str, Any], kind: str, student: nn.Module, teacher: nn.Module,
                 teacher_role: str) -> Tuple[List[Tuple[str, str]], Optional[str]]:
    """(student, teacher) module pairs for ``kind`` taps: ``distill.<kind>_taps``, else the archs' defaults; and a
    line for the run's log when defaults of different families were paired (else None).

    Defaults of the same family pair by name. Defaults of different families (e.g. Restormer teachers, a NAFNet
    student) pair by position, which needs as many taps on both sides.
    """
    key = f'{kind}_taps'
    if distill_opt.get(key) is not None:
        return parse_taps(distill_opt[key], key), None
    student_taps = default_taps(student, kind, 'student')
    teacher_taps = default_taps(teacher, kind, teacher_role)
    if student_taps == teacher_taps:
        return [(name, name) for name in student_taps], None
    names = f'student {type(student).__name__} and {teacher_role} {type(teacher).__name__}'
    if len(student_taps) != len(teacher_taps):
        raise TapError(f'distill.{key} is not set and the default {kind} taps of {names} differ in number '
                       f'({student_taps} vs {teacher_taps}); list [student, teacher] pairs in distill.{key}.')
    pairs = list(zip(student_taps, teacher_taps))
    return pairs, (f'SLKD: distill.{key} not set; default {kind} taps of {names} paired by position: '
                   + ', '.join(f'{s} -> {t}' for s, t in pairs))


class DistillTaps(NamedTuple):
    """The taps of a run: the student's (encoder taps first, then decoder taps), Teacher A's encoder taps and
    Teacher B's decoder taps (None without L_NC / L_ET), how many of the student's are encoder taps, and lines for
    the run's log (:func:`resolve_taps`)."""
    student: FeatureTaps
    teacher_a: Optional[FeatureTaps]
    teacher_b: Optional[FeatureTaps]
    num_encoder: int
    notes: List[str]

    def clear(self) -> None:
        """Drop every recorded feature."""
        for taps in (self.student, self.teacher_a, self.teacher_b):
            if taps is not None:
                taps.clear()


def tap_networks(distill_opt: Dict[str, Any], student: nn.Module, teacher_a: Optional[nn.Module],
                 teacher_b: Optional[nn.Module]) -> DistillTaps:
    """Hook the taps of ``distill_opt`` (or the archs' defaults) on the bare networks.

    Args:
        distill_opt: The ``distill`` section of the options.
        student: The bare student.
        teacher_a: Teacher A when L_NC is on (its encoder taps pair with the student's), else None.
        teacher_b: Teacher B when L_ET is on (its decoder taps pair with the student's), else None.

    Raises:
        TapError: a tap names no module of its network, or default taps cannot be paired.
    """
    enc_pairs, enc_note = resolve_taps(distill_opt, 'encoder', student, teacher_a, 'teacher A') \
        if teacher_a is not None else ([], None)
    dec_pairs, dec_note = resolve_taps(distill_opt, 'decoder', student, teacher_b, 'teacher B') \
        if teacher_b is not None else ([], None)
    return DistillTaps(
        FeatureTaps(student, [s for s, _ in enc_pairs + dec_pairs], 'student tap'),
        FeatureTaps(teacher_a, [t for _, t in enc_pairs], 'teacher A encoder tap') if enc_pairs else None,
        FeatureTaps(teacher_b, [t for _, t in dec_pairs], 'teacher B decoder tap') if dec_pairs else None,
        len(enc_pairs), [note for note in (enc_note, dec_note) if note])


def probe_input(opt: Dict[str, Any], student: nn.Module, device: Any) -> torch.Tensor:
    """The probe a run's networks see once when they are tapped: 1 x ``distill.probe_channels`` (default: the bare
    ``student``'s input channels) x ``distill.probe_size`` (default: the train set's ``gt_size``, else 64) squared."""
    distill_opt = opt.get('distill') or {}
    size = distill_opt.get('probe_size') or opt['datasets'].get('train', {}).get('gt_size') or 64
    channels = distill_opt.get('probe_channels') or input_channels(student)
    return torch.rand(1, channels, size, size, device=device)


@torch.no_grad()
def probe_tap_channels(student: nn.Module, teacher_a: Optional[nn.Module], teacher_b: Optional[nn.Module],
                       taps: DistillTaps, lq: torch.Tensor,
                       crop: Optional[Union[int, float]] = None) -> Tuple[List[int], List[int]]:
    """Run every network once on ``lq`` (Teacher B on an image of the student's output shape) to read the tap
    channels and check that the networks fit together; the teachers see what they will see in training
    (``distill.teacher_crop`` = ``crop``), whose taps must be 4 x 4 or more. The recorded
    features are dropped afterwards.

    Returns:
        The channels of the student's taps and of the teachers' (Teacher A's, then Teacher B's), in tap order.

    Raises:
        TapError: a tap returns no tensor, a teacher takes other input channels or gives another output shape
            than the student, or the crop is one the teachers would pad or leaves a tap too small.
    """
    was_training = student.training
    student.eval()
    out = student(lq)
    student.train(was_training)
    student_ch = [f.shape[1] for f in taps.student.features()]
    teacher_ch = []
    view = TeacherView.of_batch(lq, None, crop)
    gt = torch.rand_like(out)
    probes = ((teacher_a, taps.teacher_a, 'lq', lq), (teacher_b, taps.teacher_b, 'gt', gt))
    for teacher, teacher_taps, sees, full in probes:
        if teacher_taps is None:
            continue
        x = view(full)
        if input_channels(teacher) != x.shape[1]:
            raise TapError(f'teacher ({type(teacher).__name__}) takes {input_channels(teacher)} input channels '
                           f'but sees {sees} with {x.shape[1]}; match the teacher and student channel options.')
        t_out = teacher(x)
        if t_out.shape != view(out).shape:
            raise TapError(f'teacher output {tuple(t_out.shape)} and student output {tuple(view(out).shape)} '
                           'differ; teacher and student must have the same input and output channels.')
        teacher_ch += [f.shape[1] for f in teacher_taps.features()]
        if view.box is not None:
            _check_crop(teacher, teacher_taps, full, view)
    taps.clear()
    return student_ch, teacher_ch


def _check_crop(teacher: nn.Module, taps: FeatureTaps, full: torch.Tensor, view: TeacherView) -> None:
    """The teacher's taps on the crop (recorded in ``taps``) must be the crop's region of its taps on the whole
    ``full`` input, and at least 4 x 4: a teacher that pads the crop to its size multiple
    sees another image."""
    on_crop = taps.features()
    teacher(full)
    side = view.box[2]
    for name, crop_map, full_map in zip(taps.names, on_crop, taps.features()):
        if crop_map.shape[-2:] != view(full_map).shape[-2:]:
            raise TapError(f'distill.teacher_crop: {type(teacher).__name__} pads a {side}-pixel crop to its size '
                           f'multiple (its {taps.role} {name} is {tuple(crop_map.shape[-2:])}, not the crop\'s '
                           f'{tuple(view(full_map).shape[-2:])}); use a crop side that is a multiple of the '
                           "teacher's (Restormer, DRSformer: 8; NAFNet: 2 ** levels; Uformer: window x 16).")
        if min(crop_map.shape[-2:]) < 4:
            raise TapError(f'distill.teacher_crop: on a {side}-pixel crop the {taps.role} {name} is '
                           f'{crop_map.shape[-2]} x {crop_map.shape[-1]}; the feature losses need 4 x 4: raise '
                           'teacher_crop or tap a shallower module.')


def check_taps(opt: Dict[str, Any]) -> Optional[Tuple[List[int], List[int]]]:
    """For an ``SLKDModel`` training with a feature term (``train.nc_opt`` or ``et_opt``): tap the networks and run
    the probe (:func:`tap_networks`, :func:`probe_tap_channels`) as the model's build will, on networks built on
    the ``meta`` device from the options. Call it after the options check, which makes sure that the networks the
    terms need are set.

    Returns:
        The student's and the teachers' tap channels (what the model's Scale Conversion Module maps between); None
        without a feature term, and for networks that cannot be built or run on ``meta`` (an arch that computes on
        values), which are left to the model's build.

    Raises:
        TapError: as the model's build would (taps that do not exist or pair, a tap that returns no tensor, teachers
            and student of different channels, a refused ``distill.teacher_crop``).
    """
    train_opt = opt.get('train') or {}
    if opt.get('model_type') != 'SLKDModel' or not (train_opt.get('nc_opt') or train_opt.get('et_opt')):
        return None
    student = network_on_meta(opt['network_g'])
    teacher_a = network_on_meta(opt['network_teacher_a']) if train_opt.get('nc_opt') else None
    teacher_b = network_on_meta(opt['network_teacher_b']) if train_opt.get('et_opt') else None
    if student is None or (train_opt.get('nc_opt') and teacher_a is None) or \
            (train_opt.get('et_opt') and teacher_b is None):
        return None
    distill_opt = opt.get('distill') or {}
    taps = tap_networks(distill_opt, student, teacher_a, teacher_b)
    try:
        return probe_tap_channels(student, teacher_a, teacher_b, taps, probe_input(opt, student, 'meta'),
                                  distill_opt.get('teacher_crop'))
    except UserError:
        raise
    except Exception:  # noqa: BLE001  (an op without a meta kernel, or one that reads values: the build checks it)
        return None
