# The mesh's one image: the four services, deploy/topics.py and the shipped data. Which service a
# container runs is its command (deploy/compose.yaml, deploy/k8s/mesh.yaml). Built from the
# repository's root: docker build -t mesh1022:0.1.0 .
FROM python:3.11-slim
WORKDIR /app
RUN useradd --system --no-create-home --uid 10022 mesh
COPY pyproject.toml constraints.txt ./
COPY contracts contracts
COPY services services
# The versions the suite ran with (constraints.txt), installed as a package: its data files with it.
RUN pip install --no-cache-dir -c constraints.txt . && rm -rf contracts services build *.egg-info
COPY deploy/topics.py deploy/topics.py
USER mesh
ENV PYTHONUNBUFFERED=1
