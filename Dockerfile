# The stclusters image: Airflow's official image (pinned) plus requirements.txt and the project.
# docker-compose.yml builds it once and runs every Airflow component from it.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# Installing as the image's airflow user into its environment, with apache-airflow pinned to the
# image's own version so that no requirement can up- or downgrade Airflow underneath it.
COPY --chown=airflow:0 requirements.txt /opt/stclusters/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/stclusters/requirements.txt

# The project, baked in so the image runs on its own (Kubernetes, a registry); docker-compose.yml
# mounts the same folders over these for development. Airflow's own plugins folder stays empty:
# the package is installed (editable, so that docker-compose.yml's volume over plugins/ is what runs).
COPY --chown=airflow:0 dags /opt/stclusters/dags
COPY --chown=airflow:0 plugins /opt/stclusters/plugins
COPY --chown=airflow:0 dbt_project /opt/stclusters/dbt_project
COPY --chown=airflow:0 config /opt/stclusters/config
COPY --chown=airflow:0 deploy /opt/stclusters/deploy
COPY --chown=airflow:0 pyproject.toml /opt/stclusters/pyproject.toml
RUN pip install --no-cache-dir --no-deps -e /opt/stclusters
# No ENV for folders, connections or secrets here: every deployment sets them from
# deploy/airflow.env plus its own locations (docker-compose.yml; deploy/airflow_env.py).
