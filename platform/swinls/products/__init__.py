"""Sentinel-2 products as input: a STAC item, a SAFE folder or a folder of per-band files, read
band by band onto the 10 m grid (20 m and 60 m bands resampled as they are read, in windows),
digital numbers turned into reflectance by the product's own scale and offset, slope and DEM
from an elevation raster in any CRS, and all of it mapped to the model's input units. Only the
bands the model needs are opened."""

from swinls.products.discover import Product, ProductError, find_product, is_product
from swinls.products.reader import ProductRows, product_scene

__all__ = ["Product", "ProductError", "ProductRows", "find_product", "is_product", "product_scene"]
