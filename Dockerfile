# Image for the web (gunicorn) and worker (Celery) services of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# gcc builds webrtcvad (a dependency of resemblyzer); libsndfile is inside the soundfile wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU-only torch from PyTorch's own index (PyPI's default build carries CUDA, gigabytes).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md constraints.txt ./
COPY config config
COPY tenancy tenancy
COPY roles roles
COPY devices devices
COPY interrupts interrupts
COPY voiceprint voiceprint
COPY engine engine
COPY manage.py ./
RUN pip install -c constraints.txt ".[s3]"

RUN useradd --system --home /app voiceprint && mkdir -p /data && chown voiceprint /data
USER voiceprint
ENV VOICEPRINT_VAR_DIR=/data VOICEPRINT_MEDIA_ROOT=/data/media
EXPOSE 8000
CMD ["python", "-m", "config.serve", "--host", "0.0.0.0", "--port", "8000"]
