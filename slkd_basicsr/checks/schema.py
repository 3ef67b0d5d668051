"""The option keys BasicSR and this plugin read, by section: what the options check knows to be no typo.

Keys of the sections this plugin or BasicSR's ``SRModel`` read whole are checked against these sets (an unknown one is
a problem); elsewhere only keys close to a known one are (keys of other plugins stay allowed).
"""
# What parse_options and the pipelines add to the options (never written by users, never flagged)
PARSED_TOP = {'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path', 'resume_position',
              'epoch_shape'}
BASICSR_TOP = {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_d', 'path',
               'train', 'val', 'logger', 'dist_params', 'find_unused_parameters'}

# train keys SRModel (and BasicSR's train_pipeline) reads; those other BasicSR models read (SLKDModel's own keys are
# in slkd_basicsr.models.slkd_options)
SRMODEL_TRAIN = {'total_iter', 'warmup_iter', 'optim_g', 'scheduler', 'ema_decay', 'pixel_opt', 'perceptual_opt'}
BASICSR_OTHER_TRAIN = {'optim_d', 'gan_opt', 'net_d_iters', 'net_d_init_iters', 'ldl_opt', 'feature_matching_opt',
                       'dcn_lr_mul', 'flow_lr_mul', 'fix_flow', 'lr_flow', 'tsa_iter', 'mixing_prob',
                       'net_d_reg_every', 'net_g_reg_every', 'path_reg_weight', 'r1_reg_weight', 'path_batch_shrink'}

# path keys parse_options sets, BasicSR reads, or this plugin reads (per-network keys are added per network_*)
PATH_KEYS = {'experiments_root', 'models', 'training_states', 'log', 'visualization', 'results_root', 'resume_state',
             'ignore_resume_networks', 'allow_random_init'}
NETWORK_PATH_PREFIXES = ('pretrain_network_', 'param_key_', 'strict_load_')

LOADER_KEYS = {'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory',
               'persistent_workers', 'num_prefetch_queue'}
DATASET_COMMON = {'name', 'type', 'phase', 'scale'} | LOADER_KEYS
# datasets whose every option is known: their keys are checked, and train-phase keys they index are required
DATASET_KEYS = {
    'PairedImageDataset':
    DATASET_COMMON | {'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'filename_tmpl', 'gt_size',
                      'use_hflip', 'use_rot', 'mean', 'std', 'color'},
    'SyntheticDegradationDataset':
    DATASET_COMMON | {'degradations', 'source', 'dataroot_gt', 'io_backend', 'meta_info_file', 'skimage_images',
                      'skimage_scale', 'gt_size', 'use_hflip', 'use_rot', 'seed', 'draws', 'mean', 'std'},
}
DATASET_TRAIN_REQUIRED = {'PairedImageDataset': ('gt_size', 'use_hflip', 'use_rot', 'io_backend'),
                          'SyntheticDegradationDataset': ('gt_size', 'degradations')}

# dist_params: the process group's timeout for every launcher; backend and port BasicSR passes on with slurm only
DIST_PARAMS_KEYS = {'timeout_minutes', 'backend', 'port'}

VAL_KEYS = {'val_freq', 'save_img', 'suffix', 'metrics', 'pbar', 'center_frame_only', 'flip_seq', 'num_val_samples',
            'amp'}
LOGGER_KEYS = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'}
