FROM python:3.11-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY billing ./billing
COPY migrations ./migrations
RUN pip install -e . && useradd --create-home tollgate && mkdir -p /data && chown tollgate /data
USER tollgate
ENV TOLLGATE_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["tollgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
