# CUDA-capable lit_gen image. PyPI's Linux x86_64 torch wheels bundle the CUDA runtime, so a
# slim Python base plus `pip install` runs on GPUs with `docker run --gpus all` (the host needs
# only the NVIDIA driver and the NVIDIA Container Toolkit).
#   docker build -t lit_gen .
#   docker run --gpus all --rm -v $PWD/runs:/app/runs -v $PWD/data:/app/data lit_gen \
#       --config conf/experiment/dcgan_mnist.yaml trainer.devices=1
# The default command (the quickstart) trains its digits classifier first when
# runs/classifiers/digits-16px.pt is missing. `docker stop` sends SIGTERM: the run saves
# last.ckpt at the current step and exits 143 (give it time: `docker stop -t 60`); run the
# same command with `resume=last run.dir=...` to continue.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 WANDB_MODE=offline
RUN useradd --create-home --uid 1000 litgen
WORKDIR /app
COPY requirements.txt pyproject.toml README.md ./
RUN pip install -r requirements.txt
COPY lit_gen ./lit_gen
COPY conf ./conf
COPY sweeps ./sweeps
RUN pip install --no-deps . && mkdir -p /app/runs /app/data && chown -R litgen:litgen /app
USER litgen
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m", "lit_gen.fit"]
CMD ["--config", "conf/experiment/quickstart.yaml"]
