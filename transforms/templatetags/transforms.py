"""Template tags for media URLs and responsive images.

``{% load transforms %}``

- ``{% media_url "1.jpg" size="300x200" fit="cover" %}``: one signed URL;
- ``{% picture "1.jpg" widths="320,640,960" sizes="(min-width: 60em) 50vw, 100vw" ratio="3:2" alt="..." %}``:
  a ``<picture>`` with AVIF/WebP sources, srcset, sizes, width/height and lazy loading
  (every keyword of ``transforms.pictures.picture``; ``class`` is spelled ``css_class``);
- ``{% picture_url "clip.mp4" width=1280 %}``: one URL of the same picture, for ``<video poster>``.
"""

from django import template
from django.utils.safestring import SafeString

from ..pictures import picture as build_picture
from ..pictures import picture_url as build_picture_url
from ..signing import media_url as build_media_url

register = template.Library()


@register.simple_tag
def media_url(path: str, **params: object) -> str:
    return build_media_url(path, **params)


@register.simple_tag
def picture(path: str, **options: object) -> SafeString:
    return build_picture(path, **options)  # type: ignore[arg-type]


@register.simple_tag
def picture_url(path: str, **options: object) -> str:
    return build_picture_url(path, **options)  # type: ignore[arg-type]
