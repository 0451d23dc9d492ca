"""Load files that land in Amazon S3 into Amazon Redshift with Apache Airflow."""
