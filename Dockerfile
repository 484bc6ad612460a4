# overspec on an NVIDIA GPU machine. The torch wheel brings its own CUDA libraries; the base image supplies the
# CUDA runtime environment the NVIDIA container toolkit expects. Needs a driver that supports CUDA 13.0.
#   docker build -t overspec .
#   docker run --gpus all -v /data:/data -v /weights:/weights -v overspec-cache:/cache -v $PWD/runs:/work/runs \
#     overspec run paper
FROM nvidia/cuda:13.0.0-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/overspec \
    PATH=/opt/overspec/bin:$PATH \
    OVERSPEC_DATA=/data \
    OVERSPEC_WEIGHTS=/weights \
    OVERSPEC_CACHE=/cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# build the wheel from the checkout and install it with every extra (the quickstart's weights included)
COPY . /tmp/overspec
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install build \
    && python -m build --wheel --outdir /tmp/dist /tmp/overspec \
    && pip install "$(ls /tmp/dist/overspec-*.whl)[all]" \
    && pip uninstall -y build \
    && rm -rf /tmp/overspec /tmp/dist \
    && overspec --version

WORKDIR /work
VOLUME ["/data", "/weights", "/cache"]
ENTRYPOINT ["overspec"]
CMD ["--help"]
