#!/usr/bin/env python
from os import path as osp
from setuptools import find_packages, setup


def get_version() -> str:
    scope = {}
    with open(osp.join('slkd_basicsr', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def get_long_description() -> str:
    with open('README.md', encoding='utf-8') as f:
        return f.read()


EXPORT_REQUIRES = ['onnx>=1.14', 'onnxruntime>=1.16']

setup(
    name='slkd-basicsr',
    version=get_version(),
    description='Simultaneous Learning Knowledge Distillation (SLKD) for image restoration, as a BasicSR plugin',
    long_description=get_long_description(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.10',  # the tests run on 3.11
    packages=find_packages(include=['slkd_basicsr', 'slkd_basicsr.*']),
    include_package_data=True,
    package_data={'slkd_basicsr': ['assets/*.pth']},
    install_requires=[
        'torch>=1.13',
        'torchvision>=0.14',
        'basicsr==1.4.2',
        'mmengine>=0.10',
        'numpy>=1.21',
        'scipy>=1.7',
        'opencv-python>=4.5',
        'lmdb>=1.0',
        'pyyaml>=5.4',
        'scikit-image>=0.19',
        'tqdm',
    ],
    extras_require={
        # slkd-export: the TorchScript ONNX exporter needs onnx; the parity check and --bench need onnxruntime
        'export': EXPORT_REQUIRES,
        # the test suite exercises slkd-export, so it needs the export extra as well, and checks the lint
        'test': ['pytest>=7.3', 'flake8>=6', 'isort>=5'] + EXPORT_REQUIRES,
    },
    entry_points={
        'console_scripts': [
            'slkd-train=slkd_basicsr.tools.train:main',
            'slkd-test=slkd_basicsr.tools.test:main',
            'slkd-make-lmdb=slkd_basicsr.tools.make_lmdb:main',
            'slkd-demo=slkd_basicsr.tools.demo:main',
            'slkd-export=slkd_basicsr.tools.export:main',
        ],
    },
    zip_safe=False,
)
