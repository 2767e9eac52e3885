"""Django database backend: PostgreSQL, on the embedded server started on demand."""

from pathlib import Path

from django.db.backends.postgresql import base as postgresql

from config.embedded_postgres import connection_params


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self):
        settings_dict = self.settings_dict
        # Ask the server where it listens before Django builds the psycopg arguments.
        # The maintenance connection Django opens to create the test database names
        # "postgres", which always exists; the application database is created here.
        params = connection_params(Path(settings_dict["PGDATA"]), settings_dict["APP_DATABASE"])
        settings_dict["HOST"] = params["host"]
        settings_dict["PORT"] = str(params["port"])
        settings_dict["USER"] = params["user"]
        return super().get_connection_params()
