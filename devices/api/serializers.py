"""Input and output shapes of the device endpoints (API.md, "Devices")."""

from rest_framework import serializers

from devices.models import Device, device_id_validator


class DeviceStatsOutputSerializer(serializers.Serializer):
    voice_count = serializers.IntegerField()
    identify_count = serializers.IntegerField()
    matched_count = serializers.IntegerField()
    last_identify_at = serializers.DateTimeField(allow_null=True)


class DeviceOutputSerializer(serializers.ModelSerializer):
    voices = serializers.SerializerMethodField()
    stats = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = ["device_id", "device_name", "anti_spoofing", "voices", "stats", "created_at"]

    def get_voices(self, device: Device) -> list[str]:
        return [voice.voice_id for voice in device.voices.all()]

    def get_stats(self, device: Device) -> DeviceStatsOutputSerializer:
        stats = {
            "voice_count": device.voice_count,
            "identify_count": device.identify_count,
            "matched_count": device.matched_count,
            "last_identify_at": device.last_identify_at,
        }
        return DeviceStatsOutputSerializer(stats).data


ANTI_SPOOFING_HELP = (
    "check this device's identify and verify probes for recorded or synthetic speech when a "
    "request does not say; null: as the tenant's default"
)


class DeviceCreateInputSerializer(serializers.Serializer):
    device_id = serializers.CharField(max_length=128, validators=[device_id_validator])
    device_name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    anti_spoofing = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=ANTI_SPOOFING_HELP
    )


class DeviceUpdateInputSerializer(serializers.Serializer):
    device_name = serializers.CharField(max_length=128, allow_blank=False, required=False)
    anti_spoofing = serializers.BooleanField(
        required=False, allow_null=True, help_text=ANTI_SPOOFING_HELP
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("give device_name, anti_spoofing or both")
        return attrs
