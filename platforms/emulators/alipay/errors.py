"""The gateway's failure answers: the gateway codes' messages, the business sub_codes'
Chinese sub_msgs, and the exception a method raises to give one.
"""

from __future__ import annotations

__all__ = []


GATEWAY_MSG = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}

# Business failures (40004): sub_code → sub_msg, as the platform writes them.
SUB_MSG = {
    "APP_VERSION_IS_BLANK": "小程序版本号不能为空",
    "TEMPLATE_ID_IS_BLANK": "模板id不能为空",
    "CODE_TEMPLATE_NOT_EXIST": "代码模板不存在",
    "TEMPLATE_NOT_ONLINE_OR_OFFLINE": "模板版本未上架或已下架",
    "ISV_APP_ID_IS_BLANK": "服务商应用id为空，请使用第三方应用代调用",
    "INVALID_VERSION": "版本号不合法，必须为x.y.z格式的数字且大于已有版本",
    "VERSION_EXCEEDED_LENGTH": "版本号每一位不能超过2147483647",
    "VERSION_HAS_EXISTED": "该版本号已存在",
    "LARGER_VERSION_HAS_EXISTED": "已存在更大的版本号",
    "INVALID_EXT_JSON": "ext参数不是合法的json格式",
    "BUNDLE_ID_NOT_EXIST": "bundleId不存在",
    "BUILD_VERSION_NOT_EXISTED": "构建版本不存在",
    "MINI_APP_PACKAGE_INFO_NOT_EXIST": "小程序版本不存在",
    "VERSION_DESC_IS_BLANK": "版本描述不能为空",
    "INVALID_VERSION_DESC_LENGTH": "版本描述长度不合法，须为30-500个字符（一个汉字算2个字符）",
    "REGION_TYPE_IS_BLANK": "服务区域类型不能为空",
    "REGION_TYPE_IS_INVALID": "服务区域类型不合法",
    "REGION_CODE_IS_BLANK": "服务区域不能为空",
    "CAN_NOT_SUBMIT_WITHOUT_INIT": "只有开发中的版本才能提交审核",
    "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY": "存在审核中，审核通过，审核拒绝，灰度中版本不能提审",
    "EXIST_LARGER_ONLINED_VERSION": "存在更大的已上架版本",
    "AUDITING_VERSION_NOT_EXIST": "不存在审核中的版本",
    "CAN_NOT_BACK_DEV_WITHOUT_AUDIT": "只有审核通过或审核驳回的版本才能退回开发",
    "CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE": "只有灰度中或待上架的版本才能上架",
    # INFERRED wording; the sheet names the code only
    "CAN_NOT_ONLINE_NO_PROMOTE": "营销审核未通过，不能上架",
    "INVALID_REGION": "服务区域不合法",
    "INVALID_MINI_APP_MEMO_LENGTH": "备注长度不能超过500个字符",
    "SCREEN_SHOT_NUM_IS_INVALID": "截图数量须为2-5张",
    "INVALID_SCREEN_SHOT_EXT": "截图格式只支持png、jpg、jpeg",
    "SCREEN_SHOT_EXCEED_MAX_SIZE": "截图大小不能超过4M",
    "CAN_NOT_OFFLINE_WITHOUT_ONLINE": "只有已上架的版本才能下架",
    "CAN_NOT_OFFLINE_WITH_GRAY": "存在灰度中的版本，不能下架",
    "CAN_NOT_ROLLBACK_WITHOUT_ONLINE": "只有已上架的版本才能回滚",
    "CAN_NOT_ROLLBACK_WITH_GRAY": "存在灰度中的版本，不能回滚",
    "CAN_NOT_CONTINUOUS_ROLLBACK": "不能连续回滚",
    "CAN_NOT_ROLLBACK_WITHOUT_OFFLINE": "不存在可回滚的历史上架版本",
    "GRAY_STRATEGY_IS_BLANK": "灰度策略不能为空",
    "GRAY_STRATEGY_IS_INVALID": "灰度策略不合法，只支持p10、p30、p50",
    "GRAY_STRATEGY_NOT_ALLOW_REDUCE": "灰度策略不允许缩小",
    "CAN_NOT_GRAY_WITHOUT_AUDIT_PASS": "只有审核通过的版本才能灰度",
    "CAN_NOT_END_GRAY_WITHOUT_GRAY": "只有灰度中的版本才能结束灰度",
    "CAN_NOT_SET_EXP_REPEAT": "该版本已是体验版，不能重复设置",
    "CAN_NOT_SET_EXP_WITH_ONLINED_STATUS": "已上架的版本不能设置为体验版",
    "CAN_NOT_SET_EXP_INVALID_STATUS": "当前版本状态不能设置为体验版",
    # INFERRED: the sheet names SYSTEM_LIMIT (audit.apply) but gives no text; the emulator
    # answers it for the rate_limit fault on any method
    "SYSTEM_LIMIT": "调用频率超过限制，请稍后再试",
}


class _Failure(Exception):
    """A gateway answer other than success; ``signed`` is False where the key is unknown."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, *, signed: bool = True) -> None:
        super().__init__(sub_code)
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed


def _business(sub_code: str) -> _Failure:
    return _Failure("40004", sub_code, SUB_MSG.get(sub_code, f"未知的错误码{sub_code}"))
