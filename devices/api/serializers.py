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
        fields = ["device_id", "device_name", "voices", "stats", "created_at"]

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


class DeviceCreateInputSerializer(serializers.Serializer):
    device_id = serializers.CharField(max_length=128, validators=[device_id_validator])
    device_name = serializers.CharField(max_length=128, required=False, allow_blank=True)


class DeviceUpdateInputSerializer(serializers.Serializer):
    device_name = serializers.CharField(max_length=128, allow_blank=False)
