"""Google Ads API over REST: `client` (the wire library: OAuth, accessible customers and their managers' clients,
cost per campaign and day through GAQL) and `facts` (what Google documents and the client relies on). Plain
libraries: no Flask, no database."""
