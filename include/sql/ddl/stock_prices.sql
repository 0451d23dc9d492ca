-- Weekly normalised closing prices (plotly stocks.csv.gz).
CREATE TABLE IF NOT EXISTS {{ target }} (
    date date,
    goog double precision,
    aapl double precision,
    amzn double precision,
    fb   double precision,
    nflx double precision,
    msft double precision
)
SORTKEY (date);
