"""VK Ads (ads.vk.com): `client` (the wire library: OAuth, accounts, cost per campaign and day) and `facts` (what
VK documents and the client relies on). Plain libraries: no Flask, no database."""
