"""``{% load transforms %}{% media_url "1.jpg" size="300x200" fit="cover" %}``: a signed URL."""

from django import template

from ..signing import media_url as build_media_url

register = template.Library()


@register.simple_tag
def media_url(path: str, **params: object) -> str:
    return build_media_url(path, **params)
