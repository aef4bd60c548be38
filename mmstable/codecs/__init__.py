from .pdc_codec import PDCCodec, pdc_centre_of_mass

__all__ = ['PDCCodec', 'pdc_centre_of_mass']
